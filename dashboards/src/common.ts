/**
 * What both dashboards share: the provisioned data sources (deploy/grafana/provisioning), a raw-SQL
 * query of Grafana's Postgres data source (the foundation SDK has no builder for it), and the
 * field settings several panels repeat.
 */
import * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';

export const POSTGRES: dashboard.DataSourceRef = { type: 'grafana-postgresql-datasource', uid: 'icl-sweep-postgres' };
export const PROMETHEUS: dashboard.DataSourceRef = { type: 'prometheus', uid: 'icl-sweep-prometheus' };

/** A query of Grafana's Postgres data source, in code mode, returning a table. */
interface SqlQuery extends cog.Dataquery {
  refId: string;
  datasource: dashboard.DataSourceRef;
  editorMode: 'code';
  format: 'table';
  rawQuery: true;
  rawSql: string;
}

export class SqlQueryBuilder implements cog.Builder<SqlQuery> {
  constructor(
    private readonly refId: string,
    private readonly rawSql: string,
  ) {}

  build(): SqlQuery {
    return { refId: this.refId, datasource: POSTGRES, editorMode: 'code', format: 'table', rawQuery: true, rawSql: this.rawSql, _implementsDataqueryVariant() {} };
  }
}

/** A PromQL target: instant for stat and gauge panels, a range for time series. */
export function promQuery(refId: string, expr: string, legendFormat: string, instant = false): prometheus.DataqueryBuilder {
  const query = new prometheus.DataqueryBuilder().refId(refId).datasource(PROMETHEUS).expr(expr).legendFormat(legendFormat);
  return instant ? query.instant() : query.range();
}

/** The last value of every field, for stat and gauge panels. */
export const lastValue = () => new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).fields('').values(false);

export const fixedColour = (colour: string) => new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Fixed).fixedColor(colour);
export const thresholdColour = () => new dashboard.FieldColorBuilder().mode(dashboard.FieldColorModeId.Thresholds);

/** Absolute thresholds: [colour from -infinity, then (colour, from value) ...]. */
export function steps(first: string, ...rest: [string, number][]): dashboard.ThresholdsConfigBuilder {
  return new dashboard.ThresholdsConfigBuilder()
    .mode(dashboard.ThresholdsMode.Absolute)
    .steps([{ color: first, value: null as unknown as number }, ...rest.map(([color, value]) => ({ color, value }))]);
}

/** "-1" (every layer at once) written as "all layers". */
export const ALL_LAYERS: dashboard.ValueMapping[] = [{ type: dashboard.MappingType.ValueToText, options: { '-1': { text: 'all layers', index: 0 } } }];

export const link = (title: string, url: string) => new dashboard.DashboardLinkBuilder(title).type(dashboard.DashboardLinkType.Link).url(url).icon('dashboard').targetBlank(false);
