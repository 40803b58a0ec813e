/* The generate form: character counter, example prompts, duration readout and the live quote.
   The quote uses the per-second prices the server rendered from `price_list()`, and the same
   arithmetic as `quote`, so it cannot drift from what is charged: rates in thousandths of a cent
   (whole numbers, no float rounding), times the billed seconds (a reference video's whole seconds
   plus the output's, for omni-reference), rounded up to a whole cent once. The model and the
   reference video's length come from the studio (studio.js), on the form's data attributes. */
(function () {
  "use strict";
  var form = document.getElementById("generate-form");
  if (!form) return;
  var pricing = JSON.parse(document.getElementById("pricing-data").textContent);
  var prompt = form.querySelector("textarea[name=prompt]");
  var count = form.querySelector("[data-count]");
  var counter = document.getElementById("prompt-count");
  var duration = form.querySelector("input[name=duration]");
  var durationOut = document.getElementById("duration-value");
  var quote = document.getElementById("quote");
  var shortBox = document.getElementById("short-warning");
  var shortAmount = shortBox && shortBox.querySelector("[data-short]");  // absent when nothing is affordable
  var button = document.getElementById("generate-button");
  var buttons = form.querySelectorAll("#generate-button, [data-generate]");
  var blocked = document.getElementById("blocked-reason");
  var overText = counter.querySelector("[data-over]");
  // The server rendered the button off when no video is affordable at all; nothing here turns it on.
  var neverAffordable = button.disabled;
  var starting = false;
  var modelLabel = document.querySelector("[data-model-label]");

  // The same output as generations.pricing.format_usd.
  function usd(cents) {
    var sign = cents < 0 ? "-" : "";
    cents = Math.abs(cents);
    var dollars = String(Math.floor(cents / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var rest = cents % 100;
    return sign + "$" + dollars + "." + (rest < 10 ? "0" : "") + rest;
  }

  // The same output as generations.pricing.format_rate: $0.24, $0.168.
  function rate(millicents) {
    var text = (millicents / 100000).toFixed(5).replace(/0+$/, "");
    var decimals = text.split(".")[1] || "";
    if (decimals.length < 2) text = (millicents / 100000).toFixed(2);
    return "$" + text;
  }

  function checked(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : null;
  }

  function update() {
    var max = Number(counter.dataset.max);
    var length = prompt.value.trim().length;  // as the server counts it: stripped
    var over = length - max;
    count.textContent = length.toLocaleString("en-US");
    counter.classList.toggle("over", over > 0);
    overText.textContent = over > 0 ? " — " + over.toLocaleString("en-US") + " too long" : "";
    if (over > 0) prompt.setAttribute("aria-invalid", "true");
    else if (!form.querySelector("#prompt-error")) prompt.removeAttribute("aria-invalid");

    var seconds = Number(duration.value);
    durationOut.textContent = seconds + " s";
    var model = form.dataset.model || "text-to-video";
    var milli = pricing.millicents_per_second[model][checked("mode") || "std"];
    var inputSeconds = model === "omni-reference" ? Math.ceil(Number(form.dataset.videoSeconds || 0)) : 0;
    var cost = Math.floor((milli * (inputSeconds + seconds) + 999) / 1000);
    var after = pricing.balance_cents - cost;
    var billed = inputSeconds ? "(" + inputSeconds + " s reference + " + seconds + " s)" : seconds + " s";
    // Never a negative "balance after": a shortfall is said once, in the short line.
    quote.textContent = billed + " × " + rate(milli) + " = " + usd(cost) +
      (after >= 0 ? " · balance after: " + usd(after) : "");
    if (modelLabel) modelLabel.textContent = pricing.model_labels[model];
    if (shortBox) {
      shortBox.hidden = after >= 0;
      shortAmount.textContent = usd(-after);
    }

    // Generate waits until the prompt fits and the balance covers the price; the reason is said
    // under the button (the server refuses both anyway, and never cuts a prompt short).
    var reason = "";
    if (over > 0) reason = "Shorten the prompt by " + over.toLocaleString("en-US") + " characters to continue.";
    else if (after < 0 && !neverAffordable) reason = "Not enough credits for this video.";
    if (!starting) {
      buttons.forEach(function (b) { b.disabled = neverAffordable || reason !== ""; });
    }
    blocked.textContent = reason;
    blocked.hidden = reason === "";
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.addEventListener("studio:change", update);

  form.querySelectorAll("a.example").forEach(function (link) {
    link.addEventListener("click", function (e) {
      e.preventDefault();
      prompt.value = link.dataset.prompt;
      update();
      prompt.focus();
    });
  });

  // One click, one video: the idempotency key already makes a second submit free, and this
  // makes it visibly pointless too.
  form.addEventListener("submit", function (e) {
    // Enter in a field submits even with the buttons off; a submit the page blocks goes nowhere.
    // The studio's own upload button (a formaction) is not Generate, and is let through.
    var submitter = e.submitter;
    var isGenerate = !submitter || submitter === button || submitter.hasAttribute("data-generate");
    if (isGenerate && button.disabled) {
      e.preventDefault();
      if (prompt.value.trim().length > Number(counter.dataset.max)) prompt.focus();
      return;
    }
    if (!isGenerate) return;
    starting = true;
    setTimeout(function () {
      button.disabled = true;
      button.textContent = "Starting…";
    }, 0);
  });
  // Coming back through the history restores the page as it was left; make the button usable.
  window.addEventListener("pageshow", function () {
    starting = false;
    button.textContent = "Generate video";
    update();
  });

  update();
})();
