// Driver pages: browser geolocation for going online (typed fields stay as the fallback) and
// live countdowns on offers. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  function setUpLocate(form) {
    var button = form.querySelector("[data-locate]");
    var status = form.querySelector("[data-locate-status]");
    var lat = form.querySelector("input[name=latitude]");
    var lon = form.querySelector("input[name=longitude]");
    if (!button || !lat || !lon || !("geolocation" in navigator)) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      status.textContent = "Finding your location…";
      navigator.geolocation.getCurrentPosition(
        function (position) {
          lat.value = position.coords.latitude.toFixed(6);
          lon.value = position.coords.longitude.toFixed(6);
          status.textContent = "Location filled in.";
        },
        function () {
          status.textContent = "Could not read your location: type it below.";
        },
        { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 }
      );
    });
  }

  // Counted from the seconds the server had left when it sent the offer, on this page's own
  // monotonic clock: a phone whose clock is a few minutes off would otherwise show a live offer
  // as expired (and disable its buttons) or an expired one as live.
  function tick() {
    var now = window.performance.now();
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      if (element.dueAt === undefined) {
        var secondsLeft = parseInt(element.getAttribute("data-seconds-left"), 10);
        element.dueAt = isNaN(secondsLeft) ? null : now + secondsLeft * 1000;
        // The server's clock time ("10:51:51 PM") stays; the seconds after it count down.
        element.clockText = element.textContent.split(" (")[0];
      }
      var due = element.dueAt;
      if (due === null) {
        return;
      }
      var left = Math.max(0, Math.round((due - now) / 1000));
      element.textContent = element.clockText + (left > 0 ? " (" + left + " s left)" : " (expired)");
      var card = element.closest(".offer");
      if (card && left === 0 && !card.classList.contains("offer-expired")) {
        // The buttons go: a keyboard or screen-reader user on one of them is taken to the Offers
        // heading, and everyone hears which offer ran out.
        var hadFocus = card.contains(document.activeElement);
        card.classList.add("offer-expired");
        card.querySelectorAll("button").forEach(function (button) {
          button.disabled = true;
        });
        var heading = document.getElementById("offers-heading");
        if (hadFocus && heading) heading.focus();
        var status = document.getElementById("offers-status");
        var title = card.querySelector("h3");
        if (status) status.textContent = "Time to answer is up: " + (title ? title.textContent.trim() : "an offer") + ".";
      }
    });
  }

  // The Shifts card is swapped whole after a change, taking the focused button with it: keep the
  // keyboard in the card (the first field with an error, else the card's heading).
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "shifts") {
      return;
    }
    var card = document.getElementById("shifts");
    var target = card && card.querySelector("[aria-invalid=true]");
    (target || document.getElementById("shifts-heading")).focus();
  });

  // An answer to an offer (declined, or refused: taken, expired) swaps the Offers section and
  // its button goes with it: keep the keyboard in the section, on its heading. Not after the
  // 10 s refresh (a GET), which must not pull focus from wherever the driver is.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "offers" || event.detail.requestConfig.verb !== "post") {
      return;
    }
    if (!document.activeElement || document.activeElement === document.body) {
      document.getElementById("offers-heading").focus();
    }
  });

  // Offers the 10 s refresh brings are named in #offers-news, a log a screen reader speaks the
  // additions of ("New offer: $18.40 · Fashion Show"); those on the page when it loads are not.
  var offersSeen = null;
  var NEWS_KEPT = 5;

  function noteNewOffers() {
    var news = document.getElementById("offers-news");
    if (!news) {
      return;
    }
    var current = {};
    var fresh = [];
    document.querySelectorAll("#offers article.offer").forEach(function (card) {
      var id = card.getAttribute("aria-labelledby");
      current[id] = true;
      if (offersSeen !== null && !offersSeen[id]) {
        var heading = document.getElementById(id);
        fresh.push(heading ? heading.textContent.replace(/\s+/g, " ").trim() : "a route");
      }
    });
    offersSeen = current;
    if (fresh.length) {
      var line = document.createElement("p");
      line.textContent = (fresh.length === 1 ? "New offer: " : fresh.length + " new offers: ") + fresh.join("; ");
      news.appendChild(line);
      while (news.children.length > NEWS_KEPT) {
        news.removeChild(news.firstElementChild);
      }
    }
  }

  document.addEventListener("htmx:afterSettle", noteNewOffers);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-geolocate]").forEach(setUpLocate);
    noteNewOffers();
    tick();
    window.setInterval(tick, 1000);
  });
})();
