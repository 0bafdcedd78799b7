import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Buckets {
  fromMs: number;
  bucketMs: number;
  succeeded: number[];
  failed: number[];
}

/** Throughput and failures per minute over the last hour (uPlot). */
export function ActivityChart({ data }: { data: Buckets | null }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    if (!host.current) return;
    const width = Math.max(320, host.current.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 140,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, max * 1.15)] } },
        axes: [{ stroke: "#5b6473", grid: { stroke: "#eef0f3" } }, { stroke: "#5b6473", grid: { stroke: "#eef0f3" }, size: 44 }],
        series: [
          {},
          { label: "succeeded / min", stroke: "#1f8a4c", fill: "rgba(31,138,76,0.12)", width: 2 },
          { label: "failed attempts / min", stroke: "#c62f3b", fill: "rgba(198,47,59,0.10)", width: 2 },
        ],
      },
      [[], [], []],
      host.current,
    );
    const resize = (): void => {
      if (host.current && plot.current) plot.current.setSize({ width: Math.max(320, host.current.clientWidth), height: 140 });
    };
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    if (!data || !plot.current) return;
    const xs = data.succeeded.map((_, i) => (data.fromMs + i * data.bucketMs) / 1000);
    plot.current.setData([xs, data.succeeded, data.failed]);
  }, [data]);

  return <div class="chart" ref={host} data-testid="activity-chart" />;
}
