// After htmx swaps in another week of times, put keyboard and screen-reader focus on the
// week's heading, as a full page load would put it at the top, instead of losing it.
document.addEventListener("htmx:afterSwap", function (event) {
  var heading = document.getElementById("week-heading");
  if (heading && event.detail.target && event.detail.target.id === "slot-picker") {
    heading.focus();
  }
});
