// 返回 links: back to the page before when there is one (without JavaScript the link goes to the home page).
document.querySelectorAll("[data-back]").forEach(function (a) {
  a.addEventListener("click", function (event) {
    if (window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
});
