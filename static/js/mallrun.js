// Mallrun's small behaviours. No inline scripts: the Content Security Policy forbids them.
(function () {
  "use strict";

  // Cards carry absolute deadlines only (so their HTML can be cached); the time left is
  // counted here, next to each <time data-countdown>.
  function duration(minutes) {
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    var rest = minutes % 60;
    return hours + " h" + (rest ? " " + rest + " min" : "");
  }

  function updateCountdowns(root) {
    var now = Date.now();
    root.querySelectorAll("time[data-countdown]").forEach(function (time) {
      var out = time.nextElementSibling;
      if (!out || !out.classList.contains("time-left")) return;
      var due = Date.parse(time.getAttribute("datetime"));
      if (isNaN(due)) return;
      var minutes = Math.round((due - now) / 60000);
      out.textContent = minutes >= 0 ? "(" + duration(minutes) + " left)" : "(" + duration(-minutes) + " late)";
      out.classList.toggle("is-late", minutes < 0);
      out.classList.toggle("is-soon", minutes >= 0 && minutes <= 10);
    });
  }

  // The open order's card stays marked when the board refreshes or another card is opened.
  function markOpenCard() {
    var marker = document.getElementById("open-order");
    var openId = marker ? marker.value : "";
    document.querySelectorAll(".card[aria-current]").forEach(function (card) {
      if (card.dataset.order !== openId) card.removeAttribute("aria-current");
    });
    var card = openId && document.getElementById("card-" + openId);
    if (card) card.setAttribute("aria-current", "true");
  }

  // The board's poll tells the server which card is open, so a refreshed board keeps it marked,
  // and the status the panel shows, so the server can tell the panel when it changed elsewhere.
  document.addEventListener("htmx:configRequest", function (event) {
    var marker = document.getElementById("open-order");
    if (event.detail.elt.id !== "board" || !marker) return;
    event.detail.parameters.open = marker.value;
    event.detail.parameters.open_status = marker.dataset.status || "";
  });

  // The poll's answer names the open order's status when it differs from what the panel showed.
  // Compared again here, with the panel as it is now: the person's own action may have swapped
  // in the new status since the poll was sent. Only then does the panel refresh (orderStale).
  document.addEventListener("openOrderChanged", function (event) {
    var marker = document.getElementById("open-order");
    var detail = event.detail || {};
    if (!marker || marker.value !== String(detail.order) || marker.dataset.status === detail.status) return;
    if (window.htmx) window.htmx.trigger(document.getElementById("order-panel"), "orderStale");
  });

  // Regions that answer a form by swapping themselves whole: the button that had the focus is
  // gone with the old region, and the focus would fall back to the top of the document. It goes
  // to the first field to correct, else to the region's own landmark (the message; the order's
  // heading, whose alert says "Check the form below."), so a screen reader reads it and Tab
  // carries on from there. A field htmx kept the focus on (same id) keeps it.
  var FOCUS_AFTER_SWAP = {
    "store-settings": ".messages",
    team: ".messages",
    onboarding: ".messages",
    "order-panel": "#order-heading",
    // The application: the first field to correct, else the refusal (rate limit) at the top.
    "join-form": ".message",
  };

  function focusAfterSwap(element) {
    if (element.id === "order-panel" && panelRefreshKeepsFocus) {
      panelRefreshKeepsFocus = false;
      return;
    }
    var landmark = FOCUS_AFTER_SWAP[element.id];
    if (!landmark || element.contains(document.activeElement)) return;
    var target = element.querySelector('[aria-invalid="true"]') || element.querySelector(landmark);
    if (!target) return;
    if (!target.matches("input, select, textarea, button, a[href]")) target.setAttribute("tabindex", "-1");
    target.focus();
  }

  // Staff hear about new orders: when the board refreshes, the cards that were not in its New
  // column before are named in a line added to the board's log (#board-news, a live region a
  // screen reader reads additions of; the last few lines are kept). Nothing is said for the
  // cards already there when the page loads.
  var newOrdersSeen = null;
  var NEWS_KEPT = 5;

  function addNews(news, text) {
    var line = document.createElement("p");
    line.textContent = text;
    news.appendChild(line);
    while (news.children.length > NEWS_KEPT) news.removeChild(news.firstElementChild);
  }

  function newOrders() {
    var orders = {};
    document.querySelectorAll("#board .column-new .card").forEach(function (card) {
      var link = card.querySelector(".card-title a");
      orders[card.dataset.order] = link ? link.textContent.trim() : "";
    });
    return orders;
  }

  function announceNewOrders(element) {
    var news = document.getElementById("board-news");
    if (!news || !document.getElementById("board")) return;
    var current = newOrders();
    if (newOrdersSeen !== null && element.id === "board") {
      var arrived = Object.keys(current)
        .filter(function (id) {
          return !(id in newOrdersSeen);
        })
        .map(function (id) {
          return current[id];
        });
      if (arrived.length === 1) addNews(news, "New order " + arrived[0] + ".");
      if (arrived.length > 1) addNews(news, arrived.length + " new orders: " + arrived.join(", ") + ".");
    }
    newOrdersSeen = current;
  }

  // Text typed into the order panel (a reason for rejecting, a problem report) survives the
  // panel's refresh when the order changed elsewhere: the refreshed panel of the same order gets
  // it back in the field of the same id, if it still has one. Answers to the person's own posts
  // (which keep what was typed themselves) and another order's panel are left alone.
  var typedInPanel = null;

  // The panel's own refresh (orderStale: the order changed elsewhere) leaves the focus where the
  // person has it, unless it was inside the old panel.
  var panelRefreshKeepsFocus = false;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var config = event.detail.requestConfig || {};
    if (!target || target.id !== "order-panel" || config.verb !== "get") return;
    var trigger = config.triggeringEvent;
    panelRefreshKeepsFocus = Boolean(trigger && trigger.type === "orderStale" && !target.contains(document.activeElement));
    typedInPanel = { order: target.dataset.order, fields: {} };
    target.querySelectorAll("textarea[id], input[type=text][id]").forEach(function (field) {
      if (field.value !== field.defaultValue) typedInPanel.fields[field.id] = field.value;
    });
  });

  function restoreTypedText(element) {
    if (element.id !== "order-panel" || !typedInPanel) return;
    var typed = typedInPanel;
    typedInPanel = null;
    if (element.dataset.order !== typed.order) return; // another order was opened
    Object.keys(typed.fields).forEach(function (id) {
      var field = document.getElementById(id);
      if (field && element.contains(field) && !field.value) field.value = typed.fields[id];
    });
  }

  function onLoad(element) {
    restoreTypedText(element);
    updateCountdowns(element);
    markOpenCard();
    focusAfterSwap(element);
    announceNewOrders(element);
  }

  // A plain form that cannot be undone (giving a route back) asks first, as htmx forms do with
  // data-hx-confirm. Without JavaScript it posts as it is.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // A request that fails says so in words (htmx swaps nothing for an error or a lost
  // connection, so the page would otherwise look as if the tap did nothing), in one alert at the
  // bottom of the screen. A poll that fails says the page may be out of date, until one succeeds.
  var PROBLEMS = {
    0: "No connection: this was not saved. Check the connection and try again.",
    403: "This page has expired: you were logged out, or logged in again in another tab. Reload the page, then try again.",
    404: "This is no longer here: it was changed or taken off your list. Reload the page to see where things are.",
    429: "Too many tries in a row: wait a minute, then try again.",
    500: "Something went wrong on our side: this was not saved. Try again in a moment.",
  };
  var POLL_PROBLEM = "Mallrun cannot be reached: this page may be out of date. It updates again once the connection is back.";

  function problemBar() {
    var bar = document.getElementById("request-problem");
    if (bar) return bar;
    bar = document.createElement("div");
    bar.id = "request-problem";
    bar.className = "request-problem";
    bar.setAttribute("role", "alert");
    bar.hidden = true;
    var text = document.createElement("p");
    var reload = document.createElement("button");
    reload.type = "button";
    reload.className = "button";
    reload.textContent = "Reload the page";
    reload.addEventListener("click", function () {
      window.location.reload();
    });
    var dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "button button-quiet";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", function () {
      bar.hidden = true;
    });
    bar.append(text, reload, dismiss);
    document.body.appendChild(bar);
    return bar;
  }

  function isPoll(element) {
    var trigger = element && element.getAttribute && (element.getAttribute("data-hx-trigger") || "");
    return /(^|,)\s*every\s/.test(trigger);
  }

  function showProblem(event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    var poll = isPoll(event.detail.elt) && status !== 403 && status !== 404;
    var message = poll ? POLL_PROBLEM : PROBLEMS[status] || PROBLEMS[status >= 500 ? 500 : 0];
    var bar = problemBar();
    bar.dataset.poll = poll ? "true" : "";
    bar.querySelector("p").textContent = message;
    bar.hidden = false;
  }
  document.addEventListener("htmx:responseError", showProblem);
  document.addEventListener("htmx:sendError", showProblem);
  document.addEventListener("htmx:afterRequest", function (event) {
    var bar = document.getElementById("request-problem");
    if (bar && !bar.hidden && event.detail.successful && (bar.dataset.poll || !isPoll(event.detail.elt))) {
      bar.hidden = true;
    }
  });

  // The account menu closes on Escape (focus back on its name) and on a click elsewhere.
  function closeAccountMenu(focus) {
    document.querySelectorAll("details.topbar-account[open]").forEach(function (menu) {
      menu.open = false;
      if (focus) menu.querySelector("summary").focus();
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.activeElement && document.activeElement.closest("details.topbar-account[open]")) {
      closeAccountMenu(true);
    }
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest || !event.target.closest("details.topbar-account")) closeAccountMenu(false);
  });

  function start() {
    onLoad(document.body);
    if (window.htmx) window.htmx.onLoad(onLoad);
    window.setInterval(function () {
      updateCountdowns(document);
    }, 30000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
