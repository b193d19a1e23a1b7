// A time series chart on uPlot, sized to its container.
import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

interface Props {
  title: string;
  /** Unix seconds. */
  x: number[];
  y: (number | null)[];
  color: string;
  format: (v: number) => string;
  /** Shown in the header: the latest or total value. */
  headline?: string;
  testId?: string;
  height?: number;
}

export function TimeSeriesChart({ title, x, y, color, format, headline, testId, height = 160 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const formatRef = useRef(format);
  formatRef.current = format;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 1) * 1.1)] } },
      axes: [
        { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" } },
        {
          stroke: "#6b7280",
          grid: { stroke: "#eef0f3" },
          ticks: { stroke: "#e5e7eb" },
          size: 56,
          values: (_u, vals) => vals.map((v) => formatRef.current(v)),
        },
      ],
      series: [
        {},
        {
          label: title,
          stroke: color,
          width: 2,
          fill: `${color}22`,
          spanGaps: false,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? "—" : formatRef.current(v)),
        },
      ],
    };
    plot.current = new uPlot(opts, [[], []], el);
    const observer = new ResizeObserver(() => {
      if (plot.current && el.clientWidth > 0) plot.current.setSize({ width: el.clientWidth, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [title, color, height]);

  useEffect(() => {
    plot.current?.setData([x, y as number[]]);
  }, [x, y]);

  const nonZero = y.filter((v) => v !== null && v !== 0).length;
  return (
    <figure className="chart" data-testid={testId} data-nonzero-points={nonZero}>
      <figcaption>
        <span>{title}</span>
        {headline && <strong>{headline}</strong>}
      </figcaption>
      <div ref={box} className="chart-canvas" role="img" aria-label={`${title} over time`} />
    </figure>
  );
}
