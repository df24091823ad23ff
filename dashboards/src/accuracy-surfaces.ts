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
/** The selected (model, dataset, split) of the sweep, and within it the selected module. */
const TASK_FILTER = `${SWEEP} AND model = \${model:sqlstring} AND dataset = \${dataset:sqlstring} AND split = \${split:sqlstring}`;
const CELL_FILTER = `${TASK_FILTER} AND module = \${module:sqlstring}`;

/**
 * One value of every (layer, ratio) of the selected surface from cell_draw_summaries, the points whose
 * draws are all done; the unpruned model (ratio 0) is one point per (model, dataset, split), shown in
 * every layer's row (its change is 0, its spread its own).
 */
function surfaceSql(column: string, as: string): string {
  const unpruned = as === 'delta' ? '0::double precision' : `u.${column}`;
  return `SELECT layer, ratio, ${as} FROM (
  SELECT layer, ratio, ${column} AS ${as} FROM cell_draw_summaries
  WHERE ${CELL_FILTER} AND ratio > 0 AND draws_done = draws
  UNION ALL
  SELECT p.layer, 0::double precision AS ratio, ${unpruned} AS ${as}
  FROM (SELECT DISTINCT layer FROM cell_draw_summaries WHERE ${CELL_FILTER} AND ratio > 0 AND draws_done = draws) p
  CROSS JOIN (
    SELECT ${column} FROM cell_draw_summaries
    WHERE ${TASK_FILTER} AND ratio = 0 AND draws_done = draws
  ) u
) s
ORDER BY layer, ratio`;
}

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
    .description('What does the unpruned model score, and how much does the best pruned cell gain over it? (Means over the demonstration draws.)')
    .datasource(POSTGRES)
    .gridPos({ h: 4, w: 12, x: 12, y: 0 })
    .withTarget(
      new SqlQueryBuilder(
        'A',
        `SELECT max(mean_accuracy) FILTER (WHERE ratio = 0) AS baseline_accuracy,
  max(mean_accuracy) AS best_accuracy, max(mean_delta) AS best_delta
FROM cell_draw_summaries
WHERE ${TASK_FILTER} AND draws_done = draws`,
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

/** A layer x ratio matrix of one value (accuracy or delta: red to green; a spread: green to red). */
function surfacePanel(
  id: number,
  gridPos: { x: number; y: number },
  title: string,
  description: string,
  valueField: string,
  sql: string,
  range: [number, number],
  colours = dashboard.FieldColorModeId.ContinuousRdYlGr,
): table.PanelBuilder {
  return new table.PanelBuilder()
    .id(id)
    .title(title)
    .description(description)
    .datasource(POSTGRES)
    .gridPos({ h: 10, w: 12, ...gridPos })
    .withTarget(new SqlQueryBuilder('A', sql))
    .withTransformation({ id: 'groupingToMatrix', options: { columnField: 'ratio', rowField: 'layer', valueField, emptyValue: 'null' } })
    .unit('percentunit')
    .decimals(1)
    .min(range[0])
    .max(range[1])
    .colorScheme(new dashboard.FieldColorBuilder().mode(colours))
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
    .description('Where does low-rank pruning (layer x ratio) help or hurt in-context accuracy, and how much does accuracy move with the demonstrations drawn? Results from Postgres (cell_results, cell_deltas, cell_draw_summaries, selection_results).')
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
        { x: 0, y: 4 },
        'Accuracy: layer x ratio ($model, $dataset, $module, $split)',
        'Which layer and which clipping ratio give the highest accuracy? Rows: layer (-1 = every layer at once), columns: ratio (share of singular values removed; 0 = unpruned model). With demonstration draws: the mean over them.',
        'accuracy',
        surfaceSql('mean_accuracy', 'accuracy'),
        [0, 1],
      ),
    )
    .withPanel(
      surfacePanel(
        4,
        { x: 12, y: 4 },
        'Change vs unpruned: layer x ratio ($model, $dataset, $module, $split)',
        'Where does pruning help (green) or hurt (red) compared with the unpruned model of the same sweep, model, dataset and split? delta = accuracy - accuracy at ratio 0, under the same demonstration draw, averaged over the draws (colour scale -10..+10 points).',
        'delta',
        surfaceSql('mean_delta', 'delta'),
        [-0.1, 0.1],
      ),
    )
    .withPanel(
      surfacePanel(
        9,
        { x: 0, y: 14 },
        'Spread across demonstration draws: layer x ratio ($model, $dataset, $module, $split)',
        'How much does the accuracy move with the demonstrations drawn? The standard deviation of the accuracy across draws (spec demoSeeds; empty with one draw; colour scale 0..15 points). Compare it with the changes pruning makes.',
        'sd',
        surfaceSql('sd_accuracy', 'sd'),
        [0, 0.15],
        dashboard.FieldColorModeId.ContinuousGrYlRd,
      ),
    )
    .withPanel(
      rowsPanel(
        10,
        { h: 10, w: 12, x: 12, y: 14 },
        'Unpruned model across demonstration draws ($split)',
        'For each model and dataset: how far does the unpruned model\'s accuracy move from one draw of demonstrations to another (mean, standard deviation, lowest and highest), and how sure is its mean (95% interval over draws and examples)?',
        `SELECT model, dataset, draws_done AS draws, mean_accuracy, sd_accuracy, min_accuracy, max_accuracy, ci_lower, ci_upper, n
FROM cell_draw_summaries
WHERE ${SWEEP} AND split = \${split:sqlstring} AND ratio = 0
ORDER BY model, dataset`,
      ).overrideByRegexp('^(mean|sd|min|max)_accuracy$|^ci_', PERCENT),
    )
    .withPanel(
      rowsPanel(
        5,
        { h: 8, w: 24, x: 0, y: 24 },
        'Best cell per task ($split)',
        'For each model and dataset of the sweep: which (module, layer, ratio) scored highest, and by how much does it beat the unpruned model? Ties: lower ratio, then deeper layer. With demonstration draws: means over them, the spread across them (sd) and the 95% interval of the mean. f1_macro: macro-F1 of that cell (classification tasks).',
        `SELECT DISTINCT ON (p.model, p.dataset)
  p.model, p.dataset, p.task, p.module, p.layer, p.ratio, p.mean_accuracy AS accuracy, u.mean_accuracy AS baseline_accuracy,
  p.mean_delta AS delta, p.sd_accuracy AS sd, p.ci_lower, p.ci_upper, p.draws, p.mean_f1_macro AS f1_macro, p.n
FROM cell_draw_summaries p
LEFT JOIN cell_draw_summaries u ON u.sweep = p.sweep AND u.model = p.model AND u.dataset = p.dataset AND u.split = p.split AND u.ratio = 0
WHERE p.${SWEEP} AND p.split = \${split:sqlstring} AND p.draws_done = p.draws
ORDER BY p.model, p.dataset, p.mean_accuracy DESC, p.ratio ASC, p.layer DESC, p.module`,
      )
        .overrideByRegexp('^(accuracy|baseline_accuracy|f1_macro|sd|ci_lower|ci_upper)$', PERCENT)
        .overrideByName('delta', DELTA)
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        6,
        { h: 8, w: 24, x: 0, y: 32 },
        "Paper's method: selected cells (validation pick, test accuracy)",
        'Algorithm 1 of the paper: the cell picked on validation per (model, dataset) under the sweep\'s rule (paper: best validation accuracy; significant: only a significant gain over the unpruned model), its validation gain with the p-value, and its test accuracy next to the unpruned model\'s (means over the demonstration draws). Empty unless the sweep ran with selection.',
        `SELECT model, dataset, task, rule, module, layer, ratio, draws, validation_accuracy, validation_gain, validation_gain_p,
  baseline_accuracy, selected_accuracy, delta, baseline_n, selected_n, selected_status
FROM selection_results
WHERE ${SWEEP}
ORDER BY model, dataset`,
      )
        .overrideByRegexp('^(validation_accuracy|baseline_accuracy|selected_accuracy)$', PERCENT)
        .overrideByName('validation_gain', DELTA)
        .overrideByName('delta', DELTA)
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        7,
        { h: 10, w: 24, x: 0, y: 40 },
        'Cells of $model / $dataset / $module ($split)',
        'The numbers behind the surfaces: one row per finished cell (each demonstration draw, by its seed), with macro-F1, n, time, tokens, the worker that computed it and whether it was reused from an earlier sweep.',
        `SELECT module, layer, ratio, seed, accuracy, delta, f1_macro, n, seconds, forward_tokens, worker, reused
FROM cell_deltas
WHERE ${CELL_FILTER} AND status = 'done'
ORDER BY layer, ratio, seed`,
      )
        .overrideByRegexp('^(accuracy|delta|f1_macro)$', PERCENT)
        .overrideByName('seconds', [{ id: 'unit', value: 's' }])
        .overrideByName('layer', LAYER),
    )
    .withPanel(
      rowsPanel(
        8,
        { h: 6, w: 24, x: 0, y: 50 },
        'Failed cells',
        'Which cells failed, where, and why (the stored error names the fault)?',
        `SELECT model, dataset, module, layer, ratio, split, error, worker
FROM cell_results
WHERE ${SWEEP} AND status = 'failed'
ORDER BY model, dataset, module, layer, ratio`,
      ),
    );
}
