/**
 * "icl-sweep: Sweep progress": live state of running sweeps and of the workers, from Prometheus
 * (the workers' /metrics, activities/metrics.ts, and the Temporal SDK's own metrics).
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as gauge from '@grafana/grafana-foundation-sdk/gauge';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { fixedColour, lastValue, link, promQuery, PROMETHEUS, steps, thresholdColour } from './common.ts';

const S = 'sweep=~"$sweep"';
const DONE = `max by (sweep) (icl_sweep_sweep_cells_done{${S}})`;
const PLANNED = `max by (sweep) (icl_sweep_sweep_cells_planned{${S}})`;

/** A stat of instant queries, one value per series, named. */
function statPanel(id: number, x: number, w: number, title: string, description: string, targets: ReturnType<typeof promQuery>[]): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .gridPos({ h: 5, w, x, y: 0 })
    .targets(targets)
    .reduceOptions(lastValue())
    .orientation(common.VizOrientation.Auto)
    .textMode(common.BigValueTextMode.ValueAndName)
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.None)
    .justifyMode(common.BigValueJustifyMode.Auto);
}

/** A time series panel of range queries, with a legend below and a shared tooltip. */
function series(id: number, gridPos: dashboard.GridPos, title: string, description: string, unit: string, targets: ReturnType<typeof promQuery>[]): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .gridPos(gridPos)
    .targets(targets)
    .unit(unit)
    .drawStyle(common.GraphDrawStyle.Line)
    .lineWidth(1)
    .fillOpacity(10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(true)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
}

const rate = (metric: string, by: string, labels = `{${S}}`) => `sum by (${by}) (rate(${metric}${labels}[$__rate_interval]))`;

export function sweepProgress(): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder('icl-sweep: Sweep progress')
    .uid('icl-sweep-progress')
    .description('Live state of running sweeps and of the GPU workers, from Prometheus (worker /metrics and the Temporal SDK metrics).')
    .tags(['icl-sweep', 'prometheus'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .version(1)
    .refresh('30s')
    .timezone('utc')
    .time({ from: 'now-6h', to: 'now' })
    .link(link('Accuracy surfaces', '/d/icl-sweep-accuracy-surfaces/icl-sweep-accuracy-surfaces'))
    .withVariable(
      new dashboard.QueryVariableBuilder('sweep')
        .label('Sweep')
        .datasource(PROMETHEUS)
        .query({ query: 'label_values(icl_sweep_sweep_cells_planned, sweep)', refId: 'sweep' })
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .includeAll(true)
        .allValue('.+')
        .multi(true),
    )
    .withPanel(
      statPanel(
        1,
        0,
        8,
        'Cells done / planned',
        "How many cells of each sweep have a result (computed, reused or failed) out of those planned? As the sweep's workflow records them; the orchestrator workers export that record, so it reaches the planned count when the sweep completes.",
        [
          promQuery('A', DONE, 'done {{sweep}}', true),
          promQuery('B', PLANNED, 'planned {{sweep}}', true),
        ],
      )
        .unit('none')
        .colorScheme(fixedColour('blue')),
    )
    .withPanel(
      new gauge.PanelBuilder()
        .id(2)
        .title('Progress')
        .description('What share of the planned cells is finished? Exactly 100 % once the sweep completes (the plan grows by the test cells when the paper\'s selection step starts).')
        .datasource(PROMETHEUS)
        .gridPos({ h: 5, w: 4, x: 8, y: 0 })
        .withTarget(promQuery('A', `${DONE} / ${PLANNED}`, '{{sweep}}', true))
        .reduceOptions(lastValue())
        .showThresholdLabels(false)
        .showThresholdMarkers(false)
        .unit('percentunit')
        .min(0)
        .max(1)
        .colorScheme(thresholdColour())
        .thresholds(steps('blue', ['green', 1])),
    )
    .withPanel(
      statPanel(3, 12, 4, 'ETA', 'When will the sweep finish at the throughput of the last 15 minutes? (remaining cells / completed cells per second; 0 once it has completed, empty without recent throughput)', [
        promQuery('A', `(${PLANNED} - ${DONE}) / (sum by (sweep) (rate(icl_sweep_cells_completed_total{${S}}[15m])) > 0)`, '{{sweep}}', true),
      ])
        .unit('s')
        .decimals(0)
        .colorScheme(fixedColour('purple'))
        .noValue('no recent throughput'),
    )
    .withPanel(
      statPanel(
        4,
        16,
        4,
        'Failed cells, result conflicts (time range)',
        'Are cells failing? Failed attempts in the selected time range (retries count; see the Accuracy surfaces dashboard for the stored errors). Conflicts: a done cell completed again with other numbers (kept in cell_conflicts; the first result stands).',
        [
          promQuery('A', `sum by (sweep) (increase(icl_sweep_cells_failed_total{${S}}[$__range]))`, 'failed {{sweep}}', true),
          promQuery('B', `sum by (sweep) (increase(icl_sweep_cell_conflicts_total{${S}}[$__range]))`, 'conflicts {{sweep}}', true),
        ],
      )
        .unit('none')
        .decimals(0)
        .colorScheme(thresholdColour())
        .thresholds(steps('green', ['red', 1])),
    )
    .withPanel(
      statPanel(5, 20, 4, 'Workers up', 'How many workers does Prometheus reach (metrics endpoint answering)?', [
        promQuery('A', 'sum(up{job="icl-sweep-workers"})', 'workers up', true),
        promQuery('B', 'count(up{job="icl-sweep-workers"})', 'workers known', true),
      ])
        .unit('none')
        .colorScheme(fixedColour('green')),
    )
    .withPanel(
      series(6, { h: 8, w: 12, x: 0, y: 5 }, 'Throughput (cells per minute)', 'How fast are cells finishing, and how many are reused from earlier sweeps?', 'none', [
        promQuery('A', `${rate('icl_sweep_cells_completed_total', 'sweep')} * 60`, 'completed {{sweep}}'),
        promQuery('B', `${rate('icl_sweep_cells_reused_total', 'sweep')} * 60`, 'reused {{sweep}}'),
        promQuery('C', `${rate('icl_sweep_cells_failed_total', 'sweep')} * 60`, 'failed {{sweep}}'),
      ]),
    )
    .withPanel(
      series(7, { h: 8, w: 12, x: 12, y: 5 }, 'Progress over time', "Is the sweep moving? Cells with a result against the planned cells, as the sweep's workflow records them.", 'none', [
        promQuery('A', DONE, 'done {{sweep}}'),
        promQuery('B', PLANNED, 'planned {{sweep}}'),
      ]),
    )
    .withPanel(
      series(8, { h: 8, w: 12, x: 0, y: 13 }, 'Cells in flight per worker', 'Which workers are busy, and with how many cells? (per-worker activity)', 'none', [
        promQuery('A', `sum by (instance) (icl_sweep_cells_in_flight{${S}})`, '{{instance}}'),
      ])
        .fillOpacity(30)
        .spanNulls(false)
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal).group('A')),
    )
    .withPanel(
      series(9, { h: 8, w: 12, x: 12, y: 13 }, 'Cells completed per worker (per minute)', 'Are all workers pulling their weight?', 'none', [
        promQuery('A', `${rate('icl_sweep_cells_completed_total', 'instance')} * 60`, '{{instance}}'),
      ]),
    )
    .withPanel(
      series(
        10,
        { h: 8, w: 12, x: 0, y: 21 },
        'Forward tokens per second',
        'How many tokens per second do the workers run through their models? Wall-clock throughput per worker, and speed while busy (tokens / forward seconds).',
        'none',
        [
          promQuery('A', rate('icl_sweep_forward_tokens_total', 'instance'), 'wall {{instance}}'),
          promQuery('B', `${rate('icl_sweep_forward_tokens_total', 'instance')} / ${rate('icl_sweep_forward_seconds_total', 'instance')}`, 'busy {{instance}}'),
          promQuery('C', `max by (instance, model) (icl_sweep_forward_tokens_per_second{${S}})`, 'last cell {{instance}} {{model}}'),
        ],
      ),
    )
    .withPanel(
      series(11, { h: 8, w: 12, x: 12, y: 21 }, 'Examples evaluated per second', 'How fast are evaluation examples scored, per model and dataset?', 'none', [
        promQuery('A', rate('icl_sweep_examples_evaluated_total', 'model, dataset'), '{{model}} / {{dataset}}'),
      ]),
    )
    .withPanel(
      series(12, { h: 8, w: 8, x: 0, y: 29 }, 'Cell duration (p50, p95)', 'How long does one cell take?', 's', [
        promQuery('A', `histogram_quantile(0.5, ${rate('icl_sweep_cell_duration_seconds_bucket', 'le')})`, 'p50'),
        promQuery('B', `histogram_quantile(0.95, ${rate('icl_sweep_cell_duration_seconds_bucket', 'le')})`, 'p95'),
        promQuery(
          'C',
          `sum(rate(icl_sweep_cell_duration_seconds_sum{${S}}[$__rate_interval])) / sum(rate(icl_sweep_cell_duration_seconds_count{${S}}[$__rate_interval]))`,
          'mean',
        ),
      ]),
    )
    .withPanel(
      series(
        13,
        { h: 8, w: 8, x: 8, y: 29 },
        'Decomposition cache',
        'Is the SVD cache working? Hit ratio per worker, and seconds per second spent computing SVDs.',
        'percentunit',
        [
          promQuery(
            'A',
            `${rate('icl_sweep_decomposition_cache_hits_total', 'instance', '')} / (${rate('icl_sweep_decomposition_cache_hits_total', 'instance', '')} + ${rate('icl_sweep_decomposition_cache_misses_total', 'instance', '')})`,
            'hit ratio {{instance}}',
          ),
          promQuery('B', rate('icl_sweep_decomposition_seconds_total', 'instance', ''), 'SVD busy {{instance}}'),
        ],
      ),
    )
    .withPanel(
      series(
        14,
        { h: 8, w: 8, x: 16, y: 29 },
        'Model loads',
        'Are models reloaded too often (cells not routed to the worker that holds the model)? Loads per minute and mean load time.',
        'none',
        [
          promQuery('A', `${rate('icl_sweep_model_load_seconds_count', 'instance', '')} * 60`, 'loads/min {{instance}}'),
          promQuery('B', `${rate('icl_sweep_model_load_seconds_sum', 'instance', '')} / ${rate('icl_sweep_model_load_seconds_count', 'instance', '')}`, 'mean seconds {{instance}}'),
        ],
      ),
    )
    .withPanel(
      series(15, { h: 8, w: 8, x: 0, y: 37 }, 'Temporal activity slots per worker', "Are workers saturated? The Temporal SDK's activity task slots used vs available.", 'none', [
        promQuery('A', 'sum by (instance) (temporal_worker_task_slots_used{worker_type="ActivityWorker"})', 'used {{instance}}'),
        promQuery('B', 'sum by (instance) (temporal_worker_task_slots_available{worker_type="ActivityWorker"})', 'available {{instance}}'),
      ]),
    )
    .withPanel(
      series(
        16,
        { h: 8, w: 8, x: 8, y: 37 },
        'Temporal activity latency (p95)',
        'Are cells waiting in the queue (schedule-to-start) or slow to run (execution)? From the Temporal SDK metrics.',
        's',
        [
          promQuery('A', `histogram_quantile(0.95, ${rate('temporal_activity_schedule_to_start_latency_seconds_bucket', 'le', '')})`, 'schedule-to-start p95'),
          promQuery('B', `histogram_quantile(0.95, ${rate('temporal_activity_execution_latency_seconds_bucket', 'le, activity_type', '')})`, 'execution p95 {{activity_type}}'),
        ],
      ),
    )
    .withPanel(
      series(17, { h: 8, w: 8, x: 16, y: 37 }, 'Worker process', 'Is a worker short of memory or CPU? (Node process metrics)', 'none', [
        promQuery('A', 'sum by (instance) (process_resident_memory_bytes{job="icl-sweep-workers"})', 'RSS {{instance}}'),
        promQuery('B', rate('process_cpu_seconds_total', 'instance', '{job="icl-sweep-workers"}'), 'CPU cores {{instance}}'),
      ]),
    );
}
