/* Seedance Studio: when one of your videos finishes while any page of ours is open, the tab title
   says so and, if you allowed it, a desktop notification appears. Every page works without this.

   It asks the server (body[data-watch-url]) what finished since its last question: every few
   seconds while a video is in progress, once a minute otherwise. The server's own clock marks
   "since", so the visitor's clock never matters. */
(function () {
  "use strict";
  var body = document.body;
  var url = body.dataset.watchUrl;
  if (!url || !window.fetch) return;

  var BUSY = 4000;
  var IDLE = 60000;
  var since = body.dataset.watchSince;
  var baseTitle = document.title;
  var told = {};
  var unseen = 0;
  var restoreTimer = null;
  var supported = "Notification" in window;

  function restoreTitle() {
    unseen = 0;
    document.title = baseTitle;
  }

  function restoreSoon(ms) {
    clearTimeout(restoreTimer);
    restoreTimer = setTimeout(restoreTitle, ms);
  }

  function iconUrl() {
    var link = document.querySelector("link[rel=icon]");
    return link ? link.href : undefined;
  }

  function announce(items) {
    unseen += items.length;
    var last = items[0];
    var word = last.status === "succeeded" ? "\u2713 Video ready" : "\u2717 Video failed";
    document.title = (unseen > 1 ? "(" + unseen + ") " : "") + word + " \u00b7 " + baseTitle;
    // Seen at once when the tab is in front; otherwise kept until the visitor comes back.
    if (!document.hidden) restoreSoon(10000);
    if (!supported || Notification.permission !== "granted") return;
    items.forEach(function (item) {
      var note = new Notification(
        item.status === "succeeded" ? "Your video is ready" : "Your video could not be made",
        { body: item.prompt, tag: "generation-" + item.id, icon: iconUrl() }
      );
      note.onclick = function () {
        window.focus();
        window.location.href = item.url;
        note.close();
      };
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && unseen) restoreSoon(4000);
  });

  var timer = null;
  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    fetch(url + "?since=" + encodeURIComponent(since), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 401) return null; // logged out in another tab: stop asking
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (!data) return;
        since = data.now;
        var fresh = data.finished.filter(function (item) { return !told[item.id]; });
        fresh.forEach(function (item) { told[item.id] = true; });
        if (fresh.length) announce(fresh);
        schedule(data.active > 0 ? BUSY : IDLE);
      })
      .catch(function () { schedule(IDLE); });
  }
  schedule(1500);

  // "Allow desktop notifications" buttons, on the account page and beside an unfinished video;
  // shown only where the browser can, and while the visitor has not yet said yes or no.
  function describe(root) {
    if (!supported) return;
    root.querySelectorAll("[data-notify-panel]").forEach(function (panel) { panel.hidden = false; });
    root.querySelectorAll("[data-notify-enable]").forEach(function (button) {
      button.hidden = Notification.permission !== "default";
    });
    root.querySelectorAll("[data-notify-state]").forEach(function (state) {
      if (Notification.permission === "granted") {
        state.textContent = "Desktop notifications are on in this browser, and the tab title changes when a video finishes.";
      } else if (Notification.permission === "denied") {
        state.textContent = "Desktop notifications are blocked for this site in your browser's settings; the tab title still changes when a video finishes.";
      }
    });
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-notify-enable]");
    if (!button || !supported) return;
    var asked = Notification.requestPermission(function () { describe(document); });
    if (asked && asked.then) asked.then(function () { describe(document); });
  });
  describe(document);
  // Parts of a page that htmx swaps in (a generation's actions) bring their own buttons.
  document.addEventListener("htmx:load", function (e) { describe(e.target); });
})();
