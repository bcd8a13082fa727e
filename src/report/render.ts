/**
 * Charts to files without a browser: ECharts renders the option to SVG on the server, resvg rasterises the SVG to
 * PNG with the DejaVu Sans font shipped by the `dejavu-fonts-ttf` package (no system fonts are read, so a PNG is
 * the same on every machine).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as echarts from 'echarts/core';
import { LineChart as EChartsLine } from 'echarts/charts';
import { GridComponent, LegendComponent, TitleComponent } from 'echarts/components';
import { SVGRenderer } from 'echarts/renderers';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../files/atomic.js';
import { chartOption, type LineChart } from './chart.js';

echarts.use([EChartsLine, GridComponent, LegendComponent, TitleComponent, SVGRenderer]);

const require = createRequire(import.meta.url);
const FONT_DIR = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
const FONTS = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => join(FONT_DIR, f));

export const CHART_SIZE = { width: 800, height: 480 } as const;

export function renderSvg(chart: LineChart, width: number = CHART_SIZE.width, height: number = CHART_SIZE.height): string {
  const ec = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    ec.setOption(chartOption(chart, { width, fontFamily: 'DejaVu Sans' }));
    return ec.renderToSVGString();
  } finally {
    ec.dispose();
  }
}

export function svgToPng(svg: string): Buffer {
  const r = new Resvg(svg, {
    background: '#ffffff',
    font: { loadSystemFonts: false, fontFiles: FONTS, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}


/** Writes `<base>.svg` and `<base>.png`; returns their paths (PNG first). */
export function writeChart(chart: LineChart, base: string): { png: string; svg: string } {
  const svg = renderSvg(chart);
  writeFileAtomic(`${base}.svg`, svg); // a viewer never sees a half-written picture
  writeFileAtomic(`${base}.png`, svgToPng(svg));
  return { png: `${base}.png`, svg: `${base}.svg` };
}
