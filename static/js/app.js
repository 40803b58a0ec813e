/* Seedance Studio: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  // Grid tiles: play the video on hover or keyboard focus; the <video> is made on demand so
  // a page of 24 tiles downloads nothing until someone shows interest.
  function tileVideo(tile) {
    var video = tile.querySelector("video");
    if (!video) {
      video = document.createElement("video");
      video.muted = true;
      video.loop = true;
      video.playsInline = true;
      video.preload = "auto";
      video.setAttribute("aria-hidden", "true");
      video.tabIndex = -1;
      video.className = "tile-video";
      video.src = tile.dataset.video;
      video.addEventListener("playing", function () { tile.classList.add("playing"); });
      tile.querySelector(".thumb").appendChild(video);
    }
    return video;
  }
  function startTile(tile) {
    var p = tileVideo(tile).play();
    if (p && p.catch) p.catch(function () {});
  }
  function stopTile(tile) {
    var video = tile.querySelector("video");
    if (video) { video.pause(); }
    tile.classList.remove("playing");
  }
  document.addEventListener("mouseover", function (e) {
    var tile = e.target.closest && e.target.closest(".tile[data-video]");
    if (tile && !tile.contains(e.relatedTarget)) startTile(tile);
  });
  document.addEventListener("mouseout", function (e) {
    var tile = e.target.closest && e.target.closest(".tile[data-video]");
    if (tile && !tile.contains(e.relatedTarget)) stopTile(tile);
  });
  document.addEventListener("focusin", function (e) {
    var tile = e.target.closest && e.target.closest(".tile[data-video]");
    if (tile) startTile(tile);
  });
  document.addEventListener("focusout", function (e) {
    var tile = e.target.closest && e.target.closest(".tile[data-video]");
    if (tile && !tile.contains(e.relatedTarget)) stopTile(tile);
  });
  // A touch screen has no hover: the first tap on a tile plays it (and stops any other), the
  // second opens it.
  var touch = window.matchMedia && window.matchMedia("(hover: none)");
  document.addEventListener("click", function (e) {
    if (!touch || !touch.matches) return;
    var link = e.target.closest && e.target.closest(".tile[data-video] a.tile-link");
    if (!link) return;
    var tile = link.closest(".tile");
    if (tile.dataset.armed) return;
    e.preventDefault();
    document.querySelectorAll(".tile[data-armed]").forEach(function (other) {
      delete other.dataset.armed;
      stopTile(other);
    });
    tile.dataset.armed = "1";
    startTile(tile);
  });

  // Forms marked data-autosubmit apply a choice as soon as it is made (gallery filters, sharing);
  // their button, for use without scripting, is hidden. A typed search still waits for Enter.
  document.querySelectorAll("form[data-autosubmit]").forEach(function (form) {
    form.querySelectorAll("[data-autosubmit-button]").forEach(function (b) { b.hidden = true; });
    form.addEventListener("change", function (e) {
      if (e.target.matches("input[type=search], input[type=text]")) return;
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  });

  // Read-only fields meant for copying (a new API token) select themselves on focus.
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("[data-select-on-focus]")) e.target.select();
  });

  // Copy buttons: data-copy names the input whose value is copied.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.dataset.copy);
    if (!input) return;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied!";
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {});
    } else if (document.execCommand("copy")) {
      done();
    }
  });

  // The account menu closes on Escape and on a click elsewhere, as menus do.
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(e.target)) menu.removeAttribute("open");
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });

  // The elapsed clock on a generation page ticks here; the server is asked only every 2 s and
  // answers 204 until the status changes. Counting from the server's own figure avoids trusting
  // the visitor's clock.
  var seen = new WeakMap();
  function fmt(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 60) return s + " s";
    var r = s % 60;
    return Math.floor(s / 60) + " min " + (r < 10 ? "0" : "") + r + " s";
  }
  function tick() {
    document.querySelectorAll("[data-elapsed-seconds]").forEach(function (panel) {
      if (!seen.has(panel)) seen.set(panel, Date.now());
      var elapsed = Number(panel.dataset.elapsedSeconds) + (Date.now() - seen.get(panel)) / 1000;
      panel.querySelectorAll("[data-elapsed]").forEach(function (el) { el.textContent = fmt(elapsed); });
      var bar = panel.querySelector("progress[max]");
      // Past the estimate the bar would sit full and look stuck; it turns indeterminate.
      if (bar && elapsed < Number(bar.max)) bar.value = elapsed;
      else if (bar) bar.removeAttribute("value");
    });
  }
  setInterval(tick, 1000);
})();
