// After htmx swaps in another week of times, put keyboard and screen-reader focus on the
// week's heading, as a full page load would put it at the top, instead of losing it.
document.addEventListener("htmx:afterSwap", function (event) {
  var heading = document.getElementById("week-heading");
  if (heading && event.detail.target && event.detail.target.id === "slot-picker") {
    heading.focus();
  }
});

// The safety check's "No, none of these" is exclusive (the GOV.UK checkboxes pattern): ticking it
// unticks the red flags, and ticking a flag unticks it. Without JavaScript the server refuses both together.
document.addEventListener("change", function (event) {
  var box = event.target;
  var fieldset = box.closest && box.closest(".safety-flags");
  if (!fieldset || !box.checked) {
    return;
  }
  var others = box.hasAttribute("data-red-flag-none")
    ? fieldset.querySelectorAll("input[data-red-flag]")
    : fieldset.querySelectorAll("input[data-red-flag-none]");
  others.forEach(function (other) {
    other.checked = false;
  });
});
