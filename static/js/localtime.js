/* Times in the reader's own time zone. The server writes each <time data-local> in UTC (and says
   "UTC"), so without this file every time is still right; with it, it is the reader's own clock. */
(function () {
  "use strict";
  var STYLES = {
    "short": { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
    "long": { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
    "time": { hour: "2-digit", minute: "2-digit" }
  };
  var formats = {};
  function formatter(style) {
    if (!formats[style]) {
      // Only the long style names the zone: in a table's narrow column "GMT+1" on every row
      // would wrap each time onto four lines (the UTC original is the title, on hover).
      var options = STYLES[style] || STYLES["short"];
      if (style === "long") options = Object.assign({ timeZoneName: "short" }, options);
      formats[style] = new Intl.DateTimeFormat(undefined, options);
    }
    return formats[style];
  }
  function localise(root) {
    var nodes = (root || document).querySelectorAll("time[data-local]:not([data-localised])");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      if (!node.title) node.title = node.textContent.trim();
      node.textContent = formatter(node.getAttribute("data-local")).format(date);
      node.setAttribute("data-localised", "");
    }
  }
  localise(document);
  // Parts of pages that htmx swaps in (a status, a list page) carry times too.
  document.addEventListener("htmx:afterSettle", function (e) { localise(e.target); });
  window.seedanceLocalTime = localise;
}());
