// Applies the saved theme choice before the first paint. A classic script (not a module) loaded
// from <head>, because modules run only after the page is parsed: a dark-theme user would see a
// white flash first. The policy forbids inline scripts, hence this file. theme.js owns the choice.
(function () {
  try {
    var choice = localStorage.getItem("tracehive.theme");
    if (choice === "light" || choice === "dark") document.documentElement.dataset.theme = choice;
  } catch (e) {
    /* storage disabled: follow the system */
  }
})();
