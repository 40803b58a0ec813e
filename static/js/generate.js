/* The generate form: character counter, example prompts, duration readout and the live quote.
   The quote uses the per-second prices the server rendered from `price_list()`, and the same
   arithmetic as `quote` (cents per second × seconds), so it cannot drift from what is charged. */
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
  var shortAmount = shortBox.querySelector("[data-short]");
  var button = document.getElementById("generate-button");

  // The same output as generations.pricing.format_usd.
  function usd(cents) {
    var sign = cents < 0 ? "-" : "";
    cents = Math.abs(cents);
    var dollars = String(Math.floor(cents / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var rest = cents % 100;
    return sign + "$" + dollars + "." + (rest < 10 ? "0" : "") + rest;
  }

  function checked(name) {
    var input = form.querySelector("input[name=" + name + "]:checked");
    return input ? input.value : null;
  }

  function update() {
    var max = Number(counter.dataset.max);
    var length = prompt.value.length;
    count.textContent = length.toLocaleString("en-US");
    counter.classList.toggle("over", length > max);

    var seconds = Number(duration.value);
    durationOut.textContent = seconds + " s";
    var rate = pricing.cents_per_second[checked("mode") || "std"];
    var cost = rate * seconds;
    var after = pricing.balance_cents - cost;
    quote.textContent = seconds + " s × " + usd(rate) + " = " + usd(cost) + " · balance after: " + usd(after);
    shortBox.hidden = after >= 0;
    shortAmount.textContent = usd(-after);
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);

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
  form.addEventListener("submit", function () {
    setTimeout(function () {
      button.disabled = true;
      button.textContent = "Starting…";
    }, 0);
  });
  // Coming back through the history restores the page as it was left; make the button usable.
  window.addEventListener("pageshow", function () {
    button.disabled = false;
    button.textContent = "Generate video";
  });

  update();
})();
