/**
 * "icl-sweep: Accuracy surfaces": the results in Postgres (the views of db/README.md), read through
 * the read-only role. Every panel says in its description which question it answers.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import { ALL_LAYERS, fixedColour, lastValue, link, POSTGRES, SqlQueryBuilder, steps } from './common.ts';

const SWEEP = 'sweep = ${sweep:sqlstring}';
const CELL_FILTER = `${SWEEP} AND model = \${model:sqlstring} AND dataset = \${dataset:sqlstring} AND split = \${split:sqlstring} AND module = \${module:sqlstring}`;

function variable(name: string, label: string, description: string, sql: string): dashboard.QueryVariableBuilder {
  return new dashboard.QueryVariableBuilder(name)
    .label(label)
    .description(description)
    .datasource(POSTGRES)
    .query(sql)
    .refresh(dashboard.VariableRefresh.OnDashboardLoad)
    .sort(dashboard.VariableSort.Disabled)
    .includeAll(false)
    .multi(false);
}

function countsPanel(): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .id(1)
    .title('Cells of the sweep')
    .description('How far is the sweep, and did any cell fail? (all models and datasets of the sweep)')
    .datasource(POSTGRES)
    .gridPos({ h: 4, w: 12, x: 0, y: 0 })
    .withTarget(
      new SqlQueryBuilder(
        'A',
        `SELECT
  count(*) AS total,
  count(*) FILTER (WHERE status = 'done') AS done,
  count(*) FILTER (WHERE status = 'done' AND reused) AS reused,
  count(*) FILTER (WHERE status = 'failed') AS failed,
  count(*) FILTER (WHERE status IN ('pending', 'running')) AS remaining
FROM cell_results
WHERE ${SWEEP}`,
      ),
    )
    .reduceOptions(lastValue())
    .orientation(common.VizOrientation.Horizontal)
    .textMode(common.BigValueTextMode.ValueAndName)
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.None)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .unit('none')
    .colorScheme(fixedColour('blue'))
    .overrideByName('failed', [
      { id: 'color', value: { mode: 'thresholds' } },
      { id: 'thresholds', value: steps('green', ['red', 1]).build() },
    ]);
}

function bestVsUnprunedPanel(): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .id(2)
    .title('Unpruned vs best cell ($model, $dataset, $split)')
    .description('What does the unpruned model score, and how much does the best pruned cell gain over it?')
    .datasource(POSTGRES)
    .gridPos({ h: 4, w: 12, x: 12, y: 0 })
    .withTarget(
      new SqlQueryBuilder(
        'A',
        `SELECT baseline_accuracy, max(accuracy) AS best_accuracy, max(delta) AS best_delta
FROM cell_deltas
WHERE ${SWEEP} AND model = \${model:sqlstring} AND dataset = \${dataset:sqlstring} AND split = \${split:sqlstring} AND status = 'done'
GROUP BY baseline_accuracy`,
      ),
    )
    .reduceOptions(lastValue())
    .orientation(common.VizOrientation.Horizontal)
    .textMode(common.BigValueTextMode.ValueAndName)
    .colorMode(common.BigValueColorMode.Value)
    .graphMode(common.BigValueGraphMode.None)
    .justifyMode(common.BigValueJustifyMode.Auto)
    .unit('percentunit')
    .decimals(1)
    .colorScheme(fixedColour('blue'))
    .overrideByName('best_delta', [
      { id: 'color', value: { mode: 'thresholds' } },
      { id: 'thresholds', value: steps('red', ['green', 0]).build() },
    ]);
}

/** A layer x ratio matrix of one value (accuracy or delta), coloured red to green. */
function surfacePanel(id: number, x: number, title: string, description: string, valueField: string, sql: string, range: [number, number]): table.PanelBuilder {
  return new table.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(POSTGRES)
    .gridPos({ h: 10, w: 12, x, y: 4 })
    .withTarget(new SqlQueryBuilder('A', sql))
    .withTransformation({ id: 'groupingToMatrix', options: { columnField: 'ratio', rowField: 'layer', valueField, emptyValue: 'null' } })
    .unit('percentunit')
    .decimals(1)
    .min(range[0])
    .max(range[1])
    .colorScheme(new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.ContinuousRdYlGr))
    .align(common.FieldTextAlignment.Center)
    .cellOptions({ type: common.TableCellDisplayMode.ColorBackground, mode: common.TableCellBackgroundDisplayMode.Basic })
    .overrideByName('layer\\ratio', [
      { id: 'custom.cellOptions', value: { type: 'auto' } },
      { id: 'unit', value: 'none' },
      { id: 'decimals', value: 0 },
      { id: 'displayName', value: 'layer \\ ratio' },
      { id: 'mappings', value: ALL_LAYERS },
      { id: 'color', value: { mode: 'fixed', fixedColor: 'text' } },
    ])
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm);
}

/** A plain table of rows. */
function rowsPanel(id: number, gridPos: dashboard.GridPos, title: string, description: string, sql: string): table.PanelBuilder {
  return new table.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(POSTGRES)
    .gridPos(gridPos)
    .withTarget(new SqlQueryBuilder('A', sql))
    .align(common.FieldTextAlignment.Auto)
    .cellOptions({ type: common.TableCellDisplayMode.Auto })
    .showHeader(true)
    .cellHeight(common.TableCellHeight.Sm);
}

const PERCENT: dashboard.DynamicConfigValue[] = [
  { id: 'unit', value: 'percentunit' },
  { id: 'decimals', value: 1 },
];

/** Layer -1 (every layer at once) written out. */
const LAYER: dashboard.DynamicConfigValue[] = [{ id: 'mappings', value: ALL_LAYERS }];

/** A change in accuracy: red below zero, green above. */
const DELTA: dashboard.DynamicConfigValue[] = [
  ...PERCENT,
  { id: 'custom.cellOptions', value: { type: 'color-text' } },
  { id: 'color', value: { mode: 'thresholds' } },
  { id: 'thresholds', value: steps('red', ['text', 0], ['green', 1e-6]).build() },
];

export function accuracySurfaces(): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder('icl-sweep: Accuracy surfaces')
    .uid('icl-sweep-accuracy-surfaces')
    .description('Where does low-rank pruning (layer x ratio) help or hurt in-context accuracy? Results from Postgres (cell_results, cell_deltas, selection_results).')
    .tags(['icl-sweep', 'postgres'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .version(1)
    .refresh('')
    .timezone('utc')
    .time({ from: 'now-7d', to: 'now' })
    .link(link('Sweep progress', '/d/icl-sweep-progress/icl-sweep-sweep-progress'))
    .withVariable(variable('sweep', 'Sweep', 'Sweep name (sweeps table / spec "name")', 'SELECT DISTINCT sweep FROM cell_results ORDER BY sweep'))
    .withVariable(variable('model', 'Model', 'Model name from the spec', `SELECT DISTINCT model FROM cell_results WHERE ${SWEEP} ORDER BY model`))
    .withVariable(
      variable('dataset', 'Dataset', 'Dataset name from the spec', `SELECT DISTINCT dataset FROM cell_results WHERE ${SWEEP} AND model = \${model:sqlstring} ORDER BY dataset`),
    )
    .withVariable(
      variable(
        'module',
        'Module',
        'Pruned module or group (q_proj ... fc_out, mlp, attn, all)',
        `SELECT DISTINCT module FROM cell_results WHERE ${SWEEP} AND model = \${model:sqlstring} AND dataset = \${dataset:sqlstring} AND ratio > 0 ORDER BY module`,
      ),
    )
    .withVariable(
      variable(
        'split',
        'Split',
        'Evaluation split (test, or validation for the selection grid)',
        `SELECT DISTINCT split FROM cell_results WHERE ${SWEEP} AND model = \${model:sqlstring} AND dataset = \${dataset:sqlstring} ORDER BY split DESC`,
      ),
    )
    .withPanel(countsPanel())
    .withPanel(bestVsUnprunedPanel())
    .withPanel(
      surfacePanel(
        3,
        0,
        'Accuracy: layer x ratio ($model, $dataset, $module, $split)',
        'Which layer and which clipping ratio give the highest accuracy? Rows: layer (-1 = every layer at once), columns: ratio (share of singular values removed; 0 = unpruned model).',
        'accuracy',
        `SELECT layer, ratio, accuracy FROM (
  SELECT layer, ratio, accuracy FROM cell_results
  WHERE ${CELL_FILTER} AND ratio > 0 AND status = 'done'
  UNION ALL
  -- the unpruned model (ratio 0) is one cell per (model, dataset, split): show it in every layer's row
  SELECT DISTINCT layer, 0::double precision AS ratio, baseline_accuracy AS accuracy FROM cell_deltas
  WHERE ${CELL_FILTER} AND ratio > 0 AND status = 'done' AND baseline_accuracy IS NOT NULL
) s
ORDER BY layer, ratio`,
        [0, 1],
      ),
    )
    .withPanel(
      surfacePanel(
        4,
        12,
        'Change vs unpruned: layer x ratio ($model, $dataset, $module, $split)',
        'Where does pruning help (green) or hurt (red) compared with the unpruned model of the same sweep, model, dataset and split? delta = accuracy - accuracy at ratio 0 (colour scale -10..+10 points).',
        'delta',
        `SELECT layer, ratio, delta FROM (
  SELECT layer, ratio, delta FROM cell_deltas
  WHERE ${CELL_FILTER} AND ratio > 0 AND status = 'done' AND delta IS NOT NULL
  UNION ALL
  SELECT DISTINCT layer, 0::double precision AS ratio, 0::double precision AS delta FROM cell_deltas
  WHERE ${CELL_FILTER} AND ratio > 0 AND status = 'done' AND baseline_accuracy IS NOT NULL
) s
ORDER BY layer, ratio`,
        [-0.1, 0.1],
      ),
    )
    .withPanel(
      rowsPanel(
        5,
        { h: 8, w: 24, x: 0, y: 14 },
        'Best cell per task ($split)',
        'For each model and dataset of the sweep: which (module, layer, ratio) scored highest, and by how much does it beat the unpruned model? Ties: lower ratio, then deeper layer. f1_macro: macro-F1 of that cell (classification tasks).',
        `SELECT DISTINCT ON (model, dataset)
  model, dataset, task, module, layer, ratio, accuracy, baseline_accuracy, delta, f1_macro, n
FROM cell_deltas
WHERE ${SWEEP} AND split = \${split:sqlstring} AND status = 'done'
ORDER BY model, dataset, accuracy DESC, ratio ASC, layer DESC, module`,
      )
        .overrideByRegexp('^(accuracy|baseline_accuracy|f1_macro)$', PERCENT)
        .overrideByName('delta', DELTA)
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        6,
        { h: 8, w: 24, x: 0, y: 22 },
        "Paper's method: selected cells (validation pick, test accuracy)",
        'Algorithm 1 of the paper: the cell picked on validation per (model, dataset), and its test accuracy next to the unpruned model\'s. Empty unless the sweep ran with selection: true.',
        `SELECT model, dataset, task, module, layer, ratio, validation_accuracy,
  baseline_accuracy, selected_accuracy, delta, baseline_n, selected_n, selected_status
FROM selection_results
WHERE ${SWEEP}
ORDER BY model, dataset`,
      )
        .overrideByRegexp('^(validation_accuracy|baseline_accuracy|selected_accuracy)$', PERCENT)
        .overrideByName('delta', DELTA)
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        7,
        { h: 10, w: 24, x: 0, y: 30 },
        'Cells of $model / $dataset / $module ($split)',
        'The numbers behind the two surfaces: one row per finished cell, with macro-F1, n, time, tokens, the worker that computed it and whether it was reused from an earlier sweep.',
        `SELECT module, layer, ratio, accuracy, delta, f1_macro, n, seconds, forward_tokens, worker, reused
FROM cell_deltas
WHERE ${CELL_FILTER} AND status = 'done'
ORDER BY layer, ratio`,
      )
        .overrideByRegexp('^(accuracy|delta|f1_macro)$', PERCENT)
        .overrideByName('seconds', [{ id: 'unit', value: 's' }])
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        8,
        { h: 6, w: 24, x: 0, y: 40 },
        'Failed cells',
        'Which cells failed, where, and why (the stored error names the fault)?',
        `SELECT model, dataset, module, layer, ratio, split, error, worker
FROM cell_results
WHERE ${SWEEP} AND status = 'failed'
ORDER BY model, dataset, module, layer, ratio`,
      ),
    );
}
