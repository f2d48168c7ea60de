// The lifecycle page's bar chart of contacts per stage; the table under it says the same without script.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("lifecycle-chart");
    if (!el || !window.echarts) { return; }
    var data = JSON.parse(el.dataset.chart);
    var styles = getComputedStyle(document.documentElement);
    var accent = styles.getPropertyValue("--accent").trim() || "#0f766e";
    var muted = styles.getPropertyValue("--text-muted").trim() || "#64748b";
    var grid = styles.getPropertyValue("--border").trim() || "#e2e8f0";
    var instance = window.echarts.init(el, null, { renderer: "canvas" });
    instance.setOption({
      animation: false,
      grid: { left: 48, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: {
        type: "category", data: data.labels,
        axisLine: { lineStyle: { color: grid } }, axisTick: { show: false }, axisLabel: { color: muted }
      },
      yAxis: {
        type: "value", minInterval: 1,
        splitLine: { lineStyle: { color: grid } }, axisLabel: { color: muted }
      },
      series: [{ name: el.dataset.series, type: "bar", data: data.counts, barMaxWidth: 32,
                 itemStyle: { color: accent, borderRadius: [3, 3, 0, 0] } }]
    });
    window.addEventListener("resize", function () { instance.resize(); });
  });
})();
