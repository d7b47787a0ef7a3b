// Handoff at the store: scan the driver's pickup code and the package labels with the device
// camera (jsQR, vendored in static/vendor/jsqr/, loaded only when the camera is asked for), and
// tick a package's box when its label is scanned or typed. Typing works without any of this.
(function () {
  "use strict";

  var active = null; // {stream, video, frame, scanner}
  var lastText = "";
  var lastAt = 0;

  function panel() {
    return document.querySelector(".handoff-panel");
  }

  function say(text, isError) {
    var status = panel() && panel().querySelector("[data-scan-status]");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("is-error", Boolean(isError));
  }

  function stopCamera() {
    if (!active) return;
    window.cancelAnimationFrame(active.frame);
    active.stream.getTracks().forEach(function (track) {
      track.stop();
    });
    active.video.srcObject = null;
    active.scanner.hidden = true;
    active = null;
  }

  function loadJsQR(src) {
    if (window.jsQR) return Promise.resolve(window.jsQR);
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () {
        resolve(window.jsQR);
      };
      script.onerror = function () {
        reject(new Error("The QR reader did not load."));
      };
      document.head.appendChild(script);
    });
  }

  function cameraError(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return "Camera access was refused. Allow the camera for this site in the browser, or type the code.";
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError") {
      return "No camera could be used on this device. Type the code instead.";
    }
    return (error && error.message) || "The camera could not start. Type the code instead.";
  }

  function scanLoop(jsQR, onText) {
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    function tick() {
      if (!active) return;
      var video = active.video;
      if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var found = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        var now = Date.now();
        // The same code stays in view for many frames: read it once.
        if (found && found.data && (found.data !== lastText || now - lastAt > 3000)) {
          lastText = found.data;
          lastAt = now;
          onText(found.data.trim());
        }
      }
      if (active) active.frame = window.requestAnimationFrame(tick);
    }
    active.frame = window.requestAnimationFrame(tick);
  }

  function startCamera(button, onText) {
    var root = panel();
    var scanner = root.querySelector("[data-scanner]");
    var video = scanner.querySelector("video");
    stopCamera();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser cannot use a camera here. Type the code instead.", true);
      return;
    }
    say("Starting the camera…");
    loadJsQR(button.dataset.jsqrSrc)
      .then(function (jsQR) {
        return navigator.mediaDevices
          .getUserMedia({ video: { facingMode: "environment" }, audio: false })
          .then(function (stream) {
            active = { stream: stream, video: video, frame: 0, scanner: scanner, button: button };
            scanner.hidden = false;
            video.srcObject = stream;
            return video.play().then(function () {
              say("Camera on: hold the QR code inside the frame. Escape or Stop camera turns it off.");
              // The keyboard goes to the control that matters now (it sits above the scan button).
              scanner.querySelector("[data-scan-stop]").focus();
              scanLoop(jsQR, onText);
            });
          });
      })
      .catch(function (error) {
        stopCamera();
        say(cameraError(error), true);
      });
  }

  function checkbox(form, label) {
    var wanted = label.toUpperCase();
    var boxes = form.querySelectorAll('input[type="checkbox"][name="labels"]');
    for (var i = 0; i < boxes.length; i += 1) {
      if (boxes[i].value === wanted) return boxes[i];
    }
    return null;
  }

  // Ticks the boxes of the labels typed or scanned; labels not on the list stay in the field,
  // so the server refuses the handoff if they are sent.
  function tickLabels(form, text) {
    var field = form.querySelector('input[name="scanned"]');
    var parts = text.split(/[\s,;]+/).filter(Boolean);
    var stray = [];
    var ticked = [];
    parts.forEach(function (part) {
      var box = checkbox(form, part);
      if (box) {
        box.checked = true;
        ticked.push(part.toUpperCase());
      } else {
        stray.push(part.toUpperCase());
      }
    });
    field.value = stray.join(" ");
    var left = form.querySelectorAll('input[name="labels"]:not(:checked)').length;
    if (stray.length) {
      say("Label " + stray.join(", ") + " is not in this pickup: set that package aside.", true);
    } else if (ticked.length) {
      say("Ticked " + ticked.join(", ") + ". " + (left ? left + " to go." : "All packages ticked."));
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-scan-for]");
    if (button) {
      var input = document.getElementById(button.dataset.scanFor);
      var form = input.form;
      startCamera(button, function (text) {
        if (button.dataset.scanMode === "code") {
          stopCamera();
          input.value = text.replace(/\D/g, "");
          form.requestSubmit();
        } else {
          tickLabels(form, text);
        }
      });
      return;
    }
    if (event.target.closest("[data-scan-stop]")) turnOffByHand();
  });

  // Stop camera or Escape: the camera goes off and the keyboard goes back to the button that
  // started it (not to the top of the page with the hidden Stop button).
  function turnOffByHand() {
    var back = active && active.button;
    stopCamera();
    say("Camera off.");
    if (back && document.body.contains(back)) back.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && active) {
      event.preventDefault();
      turnOffByHand();
    }
  });

  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (event.key !== "Enter" || field.name !== "scanned" || !field.form) return;
    if (!field.value.trim()) return; // An empty field: Enter sends the form as usual.
    event.preventDefault();
    tickLabels(field.form, field.value);
  });

  // Whatever replaces the panel, the camera goes off with it (the board's own poll leaves it on).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var root = panel();
    var target = event.detail.target;
    if ((root && root.contains(event.detail.elt)) || (target && target.id === "order-panel")) stopCamera();
  });
  window.addEventListener("pagehide", stopCamera);

  function onLoad(element) {
    var root = element.classList && element.classList.contains("handoff-panel") ? element : null;
    (element.querySelectorAll ? element.querySelectorAll("[data-scan-for]") : []).forEach(function (button) {
      button.hidden = false;
    });
    if (root && element !== document.body) {
      var field = root.querySelector("[aria-invalid='true'], #handoff-scan, #handoff-code");
      var heading = document.getElementById("handoff-heading");
      var target = root.querySelector("[role='alert']") ? field : heading;
      if (target && !root.contains(document.activeElement)) target.focus();
    }
  }

  function start() {
    onLoad(document.body);
  }

  // Listened for on the document, since this script may run before htmx itself has loaded.
  document.addEventListener("htmx:load", function (event) {
    onLoad(event.detail.elt);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
