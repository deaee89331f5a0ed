/* plot.c -- the registry of figures and tables, their queries, the files
 * they become and gnuplot (contract: plot.h).
 *
 * Each entry pairs a query (sql/figures/NAME.sql, embedded in the binary)
 * with a layout (how gp.c draws its rows) or none (a table).  The queries
 * are the single source of what a figure shows: the script holds their rows
 * verbatim, and a table prints them.  Rendering forks gnuplot on the
 * written script, exactly as a user would run it. */
#include "plot/plot.h"
#include "core/mem.h"

#include "core/files.h"
#include "core/numtext.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/embedded.h"
#include "plot/gp.h"

/* ---- the figures ---------------------------------------------------------- */

static const struct plot_layout layout_fig2 = {
    .title = "Label Pearson correlation vs weight cosine (mean ± 2 sd over {runs} datasets)",
    .xlabel = "weight cosine similarity (task correlation)",
    .ylabel = "label Pearson correlation",
    .x = "correlation",
    .y = "mean",
    .err = "sd",
    .err_scale = 2,
    .runs = "n",
    .line_title = "mean ± 2 sd",
    .key = "top left",
    .style = GP_ERRORLINES,
    .panel_w = 720,
    .panel_h = 520,
    .flags = GP_DIAGONAL,
};

static const struct plot_layout layout_fig3 = {
    .title = "{fixed}: {metric} (mean of {runs} runs{band}) by task correlation",
    .xlabel = "training step",
    .ylabel = "{metric}",
    .series = {"model", "lr", "correlation"},
    .x = "step",
    .y = "mean",
    .runs = "n",
    .key = "top right",
    .style = GP_LINES,
    .band_lo = "lo",
    .band_hi = "hi",
    .panel_w = 820,
    .panel_h = 540,
    .flags = GP_X_FROM_0 | GP_LOG_Y,
};

static const struct plot_layout layout_fig4 = {
    .title = "{fixed}: {metric} (mean of {runs} runs{band}), each model at its best lr by "
             "validation loss",
    .xlabel = "training step",
    .ylabel = "{metric}",
    .col = "correlation",
    .series = {"model"},
    .note = "lr",
    .x = "step",
    .y = "mean",
    .runs = "n",
    .key = "top right",
    .style = GP_LINES,
    .band_lo = "lo",
    .band_hi = "hi",
    .panel_w = 520,
    .panel_h = 460,
    .flags = GP_SHARE_Y | GP_X_FROM_0 | GP_LOG_Y,
};

/* MTNAS Fig 4: one panel (rho = 0), so a shorter title than layout_fig4's. */
static const struct plot_layout layout_mtnas_fig4 = {
    .title = "{fixed}: {metric}, mean of {runs} runs",
    .xlabel = "training step",
    .ylabel = "{metric}",
    .col = "correlation",
    .series = {"model"},
    .note = "lr",
    .x = "step",
    .y = "mean",
    .runs = "n",
    .key = "top right",
    .style = GP_LINES,
    .panel_w = 620,
    .panel_h = 460,
    .flags = GP_SHARE_Y | GP_X_FROM_0 | GP_LOG_Y,
};

static const struct plot_layout layout_fig5 = {
    .title = "Final {metric} over repeated runs ({fixed}, {runs} runs per panel)",
    .xlabel = "final {metric}",
    .ylabel = "runs",
    .row = "correlation",
    .col = "model",
    .series = {"lr"},
    .y = "count",
    .lo = "lo",
    .hi = "hi",
    .runs = "n",
    .style = GP_HISTOGRAM,
    .panel_w = 440,
    .panel_h = 300,
    .flags = GP_ROW_RANGES | GP_LOG_X_AUTO,
};

static const struct plot_layout layout_gates = {
    .title = "Gate weight per expert, experts ranked in each run by the first gate "
             "(mean ± sd over {runs} runs)",
    .xlabel = "expert rank (1 = most weight from the first gate)",
    .ylabel = "mean gate weight",
    .row = "model",
    .col = "correlation",
    .series = {"gate"},
    .x = "rank",
    .y = "mean",
    .err = "sd",
    .runs = "n",
    .key = "top right",
    .style = GP_BARS,
    .panel_w = 560,
    .panel_h = 380,
    .flags = GP_SHARE_Y | GP_INT_X | GP_Y_FROM_0,
};

static const struct plot_layout layout_gates_hist = {
    .title = "Distribution of gate weights (experts, test examples and {runs} runs pooled)",
    .xlabel = "gate weight",
    .ylabel = "fraction of weights",
    .row = "model",
    .col = "correlation",
    .series = {"gate"},
    .y = "fraction",
    .lo = "lo",
    .hi = "hi",
    .runs = "trials",
    .key = "top right",
    .style = GP_STEPS,
    .panel_w = 560,
    .panel_h = 380,
    .flags = GP_SHARE_Y | GP_LOG_Y,
};

/* The SNR study (experiments/snr/; issue 13). */
static const struct plot_layout layout_snr_routes = {
    .title = "Learned routes: each connection by its serving estimate ẑ (repeat 0 of each "
             "setting)",
    .row = "model",
    .col = "between",
    .style = GP_ROUTES,
};

/* MTNAS Fig 5: the derived routes in the route drawing's style (z = the
 * final P(src in V) of an edge the derived route reads, 0 otherwise). */
static const struct plot_layout layout_mtnas_fig5 = {
    .title = "MTNAS: the derived routes (first 8 runs): an edge when the block's value subset "
             "holds the sub-network",
    .xlabel = "not in the derived route",
    .ylabel = "P(src in V)",
    .row = "repeats",
    .col = "repeat",
    .style = GP_ROUTES,
};

static const struct plot_layout layout_snr_sparsity = {
    .title = "Sparsity of the routes vs the L0 weight λ (mean ± sd over {runs} runs)",
    .xlabel = "λ (λ = 0 drawn at a tenth of the smallest λ > 0)",
    .ylabel = "fraction of the connections",
    .col = "model",
    .series = {"measure"},
    .x = "x",
    .y = "mean",
    .err = "sd",
    .err_scale = 1,
    .runs = "n",
    .key = "top right",
    .style = GP_ERRORLINES,
    .panel_w = 560,
    .panel_h = 440,
    .flags = GP_LOG_X | GP_SHARE_Y | GP_Y_FROM_0,
};

static const struct plot_layout layout_snr_size = {
    .title = "{metric} vs serving size (mean ± sd over {runs} runs per size)",
    .xlabel = "parameters served (connections with ẑ = 0 removed)",
    .ylabel = "{metric}",
    .series = {"model", "lambda", "droprate"},
    .x = "serving",
    .y = "mean",
    .err = "sd",
    .err_scale = 1,
    .runs = "n",
    .key = "top right",
    .style = GP_ERRORLINES,
    .panel_w = 820,
    .panel_h = 560,
    .flags = GP_LOG_X,
};

static const struct plot_layout layout_snr_utilisation = {
    .title = "Bottom sub-networks each task reaches through open connections (mean ± sd over "
             "{runs} runs)",
    .xlabel = "task",
    .ylabel = "fraction of the bottom sub-networks",
    .col = "lambda",
    .series = {"model"},
    .x = "task",
    .y = "mean",
    .err = "sd",
    .runs = "n",
    .key = "top right",
    .style = GP_BARS,
    .panel_w = 420,
    .panel_h = 380,
    .flags = GP_SHARE_Y | GP_INT_X | GP_Y_FROM_0,
};

static const struct plot_layout layout_snr_recovery = {
    .title = "Route recovery vs the correlation between task groups (mean ± sd over {runs} runs)",
    .xlabel = "between-group correlation (data.between)",
    .ylabel = "route recovery (overlap within - between groups)",
    .series = {"model", "levels"},
    .x = "between",
    .y = "mean",
    .err = "sd",
    .err_scale = 1,
    .runs = "n",
    .key = "top right",
    .style = GP_ERRORLINES,
    .panel_w = 760,
    .panel_h = 520,
};

static const struct plot_layout layout_snr_l0_steps = {
    .title = "Expected L0 during training, per λ (mean of {runs} runs)",
    .xlabel = "training step",
    .ylabel = "Σ P(z ≠ 0) / connections",
    .col = "model",
    .series = {"lambda"},
    .x = "step",
    .y = "mean",
    .runs = "n",
    .key = "center right",
    .style = GP_LINES,
    .panel_w = 560,
    .panel_h = 440,
    .flags = GP_SHARE_Y | GP_X_FROM_0 | GP_Y_FROM_0,
};

/* AdaTT (issue 12): experiments/adatt/, sql/figures/adatt-*.sql. */
static const struct plot_layout layout_adatt_bars = {
    .title = "Difference from Shared-Bottom per task (%, t1 MSE, t2-4 NE; mean ± 1 SE, {runs} "
             "runs)",
    .xlabel = "task",
    .ylabel = "difference from Shared-Bottom (%)",
    .series = {"model"},
    .x = "task",
    .y = "diff_pct",
    .err = "se_pct",
    .runs = "n",
    .key = "bottom right",
    .style = GP_BARS,
    .panel_w = 900,
    .panel_h = 520,
    .flags = GP_INT_X,
};

static const struct plot_layout layout_adatt_between = {
    .title = "Difference from Shared-Bottom (%, t1 MSE, t2-4 NE) by between-group correlation "
             "(mean ± 1 SE, {runs} runs)",
    .xlabel = "between-group correlation",
    .ylabel = "difference from Shared-Bottom (%)",
    .col = "task",
    .series = {"model"},
    .x = "between",
    .y = "diff_pct",
    .err = "se_pct",
    .err_scale = 1,
    .runs = "n",
    .key = "bottom left",
    .style = GP_ERRORLINES,
    .panel_w = 480,
    .panel_h = 460,
    .flags = GP_SHARE_Y,
};

static const struct plot_layout layout_adatt_heatmap = {
    .title = "Effective expert weight (gate + native) per task and expert, mean of {runs} runs",
    .xlabel = "expert (task 1's, ..., task T's, then shared)",
    .ylabel = "task",
    .row = "model",
    .col = "level",
    .x = "expert",
    .y = "task",
    .z = "weight",
    .runs = "n",
    .style = GP_HEATMAP,
    .panel_w = 460,
    .panel_h = 400,
    .flags = GP_INT_X,
};

static const struct plot_layout layout_adatt_heatmap_between = {
    .title = "AdaTT-sp effective expert weight by between-group correlation (mean of {runs} runs)",
    .xlabel = "expert (expert k is task k's)",
    .ylabel = "task",
    .row = "between",
    .col = "level",
    .x = "expert",
    .y = "task",
    .z = "weight",
    .runs = "n",
    .style = GP_HEATMAP,
    .panel_w = 420,
    .panel_h = 360,
    .flags = GP_INT_X,
};

/* MMoE §6 baselines (experiments/mmoe/baselines.ini). */
static const struct plot_layout layout_mmoe_baselines = {
    .title = "{metric}, each family at its best grid point (mean ± 1 SE, {runs} runs)",
    .xlabel = "task correlation",
    .ylabel = "{metric}",
    .series = {"model"},
    .x = "correlation",
    .y = "mean",
    .err = "se",
    .err_scale = 1,
    .runs = "n",
    .key = "top center",
    .style = GP_ERRORLINES,
    .panel_w = 820,
    .panel_h = 540,
};

static const plot_figure_t registry[] = {
    {"mmoe-fig2", PLOT_FIGURE,
     "MMoE Fig 2: label Pearson correlation vs weight cosine, mean ± 2 sd over datasets",
     "sql/figures/mmoe-fig2.sql", "mmoe-fig2", "data/pearson/t1-t2", "experiments/mmoe/fig2.ini",
     &layout_fig2},
    {"mmoe-fig3", PLOT_FIGURE, "MMoE Fig 3: Shared-Bottom mean loss curve per task correlation",
     "sql/figures/mmoe-fig3.sql", "mmoe-fig3", "test/loss/t1", "experiments/mmoe/fig3.ini",
     &layout_fig3},
    {"mmoe-fig4", PLOT_FIGURE,
     "MMoE Fig 4: SB / OMoE / MMoE mean loss curves, a panel per correlation, best lr each",
     "sql/figures/mmoe-fig4.sql", "mmoe-fig4", "test/loss/t1", "experiments/mmoe/fig4.ini",
     &layout_fig4},
    {"mmoe-fig5", PLOT_FIGURE,
     "MMoE Fig 5: histograms of the final test loss over runs, correlation x model",
     "sql/figures/mmoe-fig5.sql", "mmoe-fig5", "test/loss/t1", "experiments/mmoe/fig5.ini",
     &layout_fig5},
    {"mmoe-gates", PLOT_FIGURE,
     "Gate weight per expert rank for each gate (OMoE, MMoE), mean ± sd over runs",
     "sql/figures/mmoe-gates.sql", "mmoe-gates", NULL, "experiments/mmoe/gates.ini", &layout_gates},
    {"mmoe-gates-hist", PLOT_FIGURE,
     "Distribution of gate weights per gate (OMoE, MMoE), pooled over experts and runs",
     "sql/figures/mmoe-gates-hist.sql", "mmoe-gates", NULL, "experiments/mmoe/gates.ini",
     &layout_gates_hist},
    {"mmoe-table", PLOT_TABLE,
     "Table: final test loss per model and correlation (n, failed, mean, sd, min, median, max)",
     "sql/figures/mmoe-table.sql", "mmoe-fig5", "test/loss/t1", "experiments/mmoe/fig5.ini", NULL},
    {"mmoe-table-fig4", PLOT_TABLE,
     "Table: Fig 4 at the best lr per model and correlation (val/test loss, mean, sd, min, max)",
     "sql/figures/mmoe-table-fig4.sql", "mmoe-fig4", "test/loss/t1", "experiments/mmoe/fig4.ini",
     NULL},
    {"snr-routes", PLOT_FIGURE,
     "SNR routes as graphs: nodes by layer, edges coloured by ẑ, a panel per model x between",
     "sql/figures/snr-routes.sql", "snr-recovery", NULL, "experiments/snr/recovery.ini",
     &layout_snr_routes},
    {"snr-sparsity", PLOT_FIGURE,
     "SNR sparsity vs λ: expected L0 and open connections as fractions, mean ± sd",
     "sql/figures/snr-sparsity.sql", "snr-lambda", NULL, "experiments/snr/lambda.ini",
     &layout_snr_sparsity},
    {"snr-size", PLOT_FIGURE,
     "Test loss vs serving parameter count: SNR-Trans/Aver, SB, MMoE, ML-MMoE at several sizes",
     "sql/figures/snr-size.sql", "snr-size", "test/loss/total", "experiments/snr/size.ini",
     &layout_snr_size},
    {"snr-utilisation", PLOT_FIGURE, "Sub-network utilisation per task (SNR Fig 5), a panel per λ",
     "sql/figures/snr-utilisation.sql", "snr-lambda", NULL, "experiments/snr/lambda.ini",
     &layout_snr_utilisation},
    {"snr-recovery", PLOT_FIGURE,
     "Route recovery score vs between-group correlation, per model (SNR, MMoE gates)",
     "sql/figures/snr-recovery.sql", "snr-recovery", NULL, "experiments/snr/recovery.ini",
     &layout_snr_recovery},
    {"snr-l0-steps", PLOT_FIGURE,
     "SNR expected L0 (as a fraction of the connections) over training, a line per λ",
     "sql/figures/snr-l0-steps.sql", "snr-lambda", NULL, "experiments/snr/lambda.ini",
     &layout_snr_l0_steps},
    {"snr-table", PLOT_TABLE,
     "Table: the λ sweep (connections, expected L0, open, serving size, test loss, recovery)",
     "sql/figures/snr-table.sql", "snr-lambda", "test/loss/total", "experiments/snr/lambda.ini",
     NULL},
    {"adatt-table-comparison", PLOT_TABLE,
     "AdaTT Tables 1-3: each family's NE / MSE difference from Shared-Bottom per task (%, ± SE)",
     "sql/figures/adatt-table-comparison.sql", "adatt-comparison", NULL,
     "experiments/adatt/comparison.ini", NULL},
    {"adatt-comparison", PLOT_FIGURE,
     "AdaTT Tables 1-3 as grouped bars: difference from Shared-Bottom per task and family ± SE",
     "sql/figures/adatt-comparison.sql", "adatt-comparison", NULL,
     "experiments/adatt/comparison.ini", &layout_adatt_bars},
    {"adatt-table-ablation", PLOT_TABLE,
     "AdaTT Table 6: NativeExpertLF off vs on, difference per task (%, ± SE)",
     "sql/figures/adatt-table-ablation.sql", "adatt-ablation", NULL,
     "experiments/adatt/ablation.ini", NULL},
    {"adatt-table-experts", PLOT_TABLE,
     "AdaTT Table 7: 1-4 experts per task, difference from 1 per task (%, ± SE)",
     "sql/figures/adatt-table-experts.sql", "adatt-experts", NULL, "experiments/adatt/experts.ini",
     NULL},
    {"adatt-table-levels", PLOT_TABLE,
     "AdaTT Table 8: 1-4 fusion levels, difference from 2 levels (%, ± SE)",
     "sql/figures/adatt-table-levels.sql", "adatt-levels", NULL, "experiments/adatt/levels.ini",
     NULL},
    {"adatt-fig3", PLOT_FIGURE,
     "AdaTT Fig 3: effective expert weights, tasks x experts per fusion level (heat maps)",
     "sql/figures/adatt-fig3.sql", "adatt-comparison", NULL, "experiments/adatt/comparison.ini",
     &layout_adatt_heatmap},
    {"adatt-between", PLOT_FIGURE,
     "Each family's difference from Shared-Bottom per task vs between-group correlation ± SE",
     "sql/figures/adatt-between.sql", "adatt-between", NULL, "experiments/adatt/between.ini",
     &layout_adatt_between},
    {"adatt-fig3-between", PLOT_FIGURE,
     "AdaTT-sp effective expert weights per level and between-group correlation (heat maps)",
     "sql/figures/adatt-fig3-between.sql", "adatt-between", NULL, "experiments/adatt/between.ini",
     &layout_adatt_heatmap_between},
    {"mmoe-baselines", PLOT_FIGURE,
     "MMoE §6 baselines (L2, Cross-stitch, Tucker) beside SB/OMoE/MMoE per correlation ± SE",
     "sql/figures/mmoe-baselines.sql", "mmoe-baselines", "test/loss/t1",
     "experiments/mmoe/baselines.ini", &layout_mmoe_baselines},
    {"mmoe-table-baselines", PLOT_TABLE,
     "Table: MMoE §6 baselines, every grid point per correlation, the one chosen on val loss",
     "sql/figures/mmoe-table-baselines.sql", "mmoe-baselines", "test/loss/t1",
     "experiments/mmoe/baselines.ini", NULL},
    {"mtnas-fig4", PLOT_FIGURE,
     "MTNAS Fig 4: SB / MMoE / MTNAS mean total loss curves at rho = 0, matched sizes",
     "sql/figures/mmoe-fig4.sql", "mtnas-rho0", "test/loss/total", "experiments/mtnas/rho0.ini",
     &layout_mtnas_fig4},
    {"mtnas-fig6", PLOT_FIGURE, "MTNAS Fig 6: MMoE's gate weight per expert rank at rho = 0",
     "sql/figures/mmoe-gates.sql", "mtnas-rho0", NULL, "experiments/mtnas/rho0.ini",
     &layout_gates},
    {"mtnas-table", PLOT_TABLE,
     "Table: MTNAS Fig 4's final total test loss per model (n, failed, mean, sd, min, median, max)",
     "sql/figures/mmoe-table.sql", "mtnas-rho0", "test/loss/total", "experiments/mtnas/rho0.ini",
     NULL},
    {"mtnas-fig5", PLOT_FIGURE,
     "MTNAS Fig 5: the derived routes drawn, nodes by layer, an edge per value the route reads",
     "sql/figures/mtnas-fig5.sql", "mtnas-rho0", NULL, "experiments/mtnas/rho0.ini",
     &layout_mtnas_fig5},
    {"mtnas-routes", PLOT_TABLE,
     "Table: MTNAS Fig 5 as counts: each task's derived value subset and query over the runs",
     "sql/figures/mtnas-routes.sql", "mtnas-rho0", NULL, "experiments/mtnas/rho0.ini", NULL},
    {"mtnas-overlap", PLOT_TABLE,
     "Table: the fraction of runs whose two tasks' derived routes share no sub-network",
     "sql/figures/mtnas-overlap.sql", "mtnas-rho0", NULL, "experiments/mtnas/rho0.ini", NULL},
    {"mtnas-variants", PLOT_TABLE,
     "Table: MTNAS Table 5 on synthetic data: full vs w/o QS vs mean-gate Baseline",
     "sql/figures/mtnas-variants.sql", "mtnas-variants", "test/loss/total",
     "experiments/mtnas/variants.ini", NULL},
};

#define N_REGISTRY ((int)(sizeof registry / sizeof registry[0]))

const plot_figure_t *plot_registry(int *n) {
    *n = N_REGISTRY;
    return registry;
}

const plot_figure_t *plot_find(const char *name) {
    for (int i = 0; name && i < N_REGISTRY; i++)
        if (strcmp(registry[i].name, name) == 0) return &registry[i];
    return NULL;
}

static int unknown_name(const char *name, err_t *err) {
    char known[400] = "";
    for (int i = 0; i < N_REGISTRY; i++) {
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", registry[i].name);
    }
    return err_set(err, ERR_USAGE, "unknown figure '%s' (known: %s)", name, known);
}

/* ---- queries -------------------------------------------------------------- */

static const char *param_experiment(const plot_figure_t *fig, const plot_params_t *params) {
    return params && params->experiment ? params->experiment : fig->experiment;
}

static const char *param_metric(const plot_figure_t *fig, const plot_params_t *params) {
    return params && params->metric ? params->metric : fig->metric;
}

/* Binds the statement's named parameters; an unknown one is an error of the
 * figure's SQL. */
static int bind_params(sqlite3_stmt *st, const plot_figure_t *fig, const plot_params_t *params,
                       err_t *err) {
    for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
        const char *name = sqlite3_bind_parameter_name(st, i);
        int rc;
        if (name && strcmp(name, ":experiment") == 0) {
            rc = sqlite3_bind_text(st, i, param_experiment(fig, params), -1, SQLITE_TRANSIENT);
        } else if (name && strcmp(name, ":metric") == 0) {
            const char *metric = param_metric(fig, params);
            if (!metric) return err_set(err, ERR_USAGE, "%s needs a metric", fig->name);
            rc = sqlite3_bind_text(st, i, metric, -1, SQLITE_TRANSIENT);
        } else if (name && strcmp(name, ":band") == 0) {
            const char *band = params && params->band ? params->band : PLOT_DEFAULT_BAND;
            if (strcmp(band, "ci95") != 0 && strcmp(band, "se") != 0 && strcmp(band, "sd") != 0 &&
                strcmp(band, "none") != 0)
                return err_set(err, ERR_USAGE, "--band: ci95, se, sd or none, not '%s'", band);
            rc = sqlite3_bind_text(st, i, band, -1, SQLITE_TRANSIENT);
        } else if (name && strcmp(name, ":bins") == 0) {
            int bins = params && params->bins > 0 ? params->bins : PLOT_DEFAULT_BINS;
            rc = sqlite3_bind_int(st, i, bins);
        } else {
            return err_set(err, ERR_FAIL, "%s: unknown parameter %s", fig->sql,
                           name ? name : "(unnamed)");
        }
        if (rc != SQLITE_OK) return err_set(err, ERR_FAIL, "%s: cannot bind %s", fig->sql, name);
    }
    return 0;
}

/* Appends the current row of st to t (cells as in store/query.h). */
static int table_append(store_table_t *t, sqlite3_stmt *st, int *cap, err_t *err) {
    const int n = t->n_cols;
    if (t->n_rows == *cap) {
        int grown = *cap ? 2 * *cap : 64;
        char **cells = mem_realloc(t->cells, (size_t)grown * (size_t)(n ? n : 1) * sizeof *cells);
        if (!cells) return err_set(err, ERR_FAIL, "out of memory");
        t->cells = cells;
        int *types = mem_realloc(t->types, (size_t)grown * (size_t)(n ? n : 1) * sizeof *types);
        if (!types) return err_set(err, ERR_FAIL, "out of memory");
        t->types = types;
        *cap = grown;
    }
    const size_t base = (size_t)t->n_rows * (size_t)n;
    for (int c = 0; c < n; c++) {
        int type = sqlite3_column_type(st, c);
        char buf[64];
        const char *text = NULL;
        switch (type) {
        case SQLITE_INTEGER:
            snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(st, c));
            text = buf;
            break;
        case SQLITE_FLOAT:
            num_to_text(sqlite3_column_double(st, c), buf, sizeof buf);
            text = buf;
            break;
        case SQLITE_NULL:
            break;
        default: /* text; a blob is shown as its text */
            text = (const char *)sqlite3_column_text(st, c);
            type = SQLITE_TEXT;
            break;
        }
        t->types[base + (size_t)c] = type;
        t->cells[base + (size_t)c] = NULL;
        if (text && !(t->cells[base + (size_t)c] = mem_strdup(text))) {
            for (int j = 0; j < c; j++)
                mem_free(t->cells[base + (size_t)j]);
            return err_set(err, ERR_FAIL, "out of memory");
        }
    }
    t->n_rows++;
    return 0;
}

int plot_query(store_t *s, const plot_figure_t *fig, const plot_params_t *params,
               store_table_t **out, err_t *err) {
    *out = NULL;
    const char *sql = embedded_sql(fig->sql);
    if (!sql) return err_set(err, ERR_FAIL, "%s is not compiled into this mtlab", fig->sql);
    sqlite3 *db = store_db(s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || !st) {
        err_set(err, ERR_FAIL, "%s: %s", fig->sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return -1;
    }
    store_table_t *t = mem_calloc(1, sizeof *t);
    int cap = 0, rc = -1;
    if (!t) {
        err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    if (bind_params(st, fig, params, err)) goto done;
    t->n_cols = sqlite3_column_count(st);
    t->names = mem_calloc((size_t)t->n_cols + 1, sizeof *t->names);
    if (!t->names) {
        err_set(err, ERR_FAIL, "out of memory");
        goto done;
    }
    for (int c = 0; c < t->n_cols; c++)
        if (!(t->names[c] = mem_strdup(sqlite3_column_name(st, c)))) {
            err_set(err, ERR_FAIL, "out of memory");
            goto done;
        }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (table_append(t, st, &cap, err)) goto done;
    if (step != SQLITE_DONE) {
        err_set(err, ERR_FAIL, "%s on %s: %s", fig->sql, store_path(s), sqlite3_errmsg(db));
        goto done;
    }
    *out = t;
    t = NULL;
    rc = 0;
done:
    store_table_free(t);
    sqlite3_finalize(st);
    return rc;
}

/* ---- files ---------------------------------------------------------------- */

/* Writes `path` through PATH.tmp and a rename, so a reader never sees half
 * a file; write(f, ctx, err) produces the content. */
static int write_atomically(const char *path, int (*write)(FILE *f, void *ctx, err_t *err),
                            void *ctx, err_t *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return err_set(err, ERR_FAIL, "cannot write %s: %s", tmp, strerror(errno));
    int rc = write(f, ctx, err);
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(err, ERR_FAIL, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_set(err, ERR_FAIL, "cannot write %s: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

/* ---- tables --------------------------------------------------------------- */

static bool is_number(int type) {
    return type == SQLITE_INTEGER || type == SQLITE_FLOAT;
}

/* A markdown cell: reals with 4 significant digits, NULL empty. */
static const char *md_cell(const store_table_t *t, int r, int c, char *buf, size_t size) {
    const char *s = store_table_cell(t, r, c);
    if (!s) return "";
    if (store_table_type(t, r, c) == SQLITE_FLOAT) {
        snprintf(buf, size, "%.4g", strtod(s, NULL));
        return buf;
    }
    return s;
}

/* GitHub markdown: a header, an alignment rule (numbers right-aligned), rows. */
static int table_markdown(FILE *f, const store_table_t *t, err_t *err) {
    const int n = t->n_cols;
    int *width = mem_calloc((size_t)n + 1, sizeof *width);
    bool *right = mem_calloc((size_t)n + 1, sizeof *right);
    if (!width || !right) {
        mem_free(width);
        mem_free(right);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    char buf[64];
    for (int c = 0; c < n; c++) {
        width[c] = (int)strlen(t->names[c]);
        int numbers = 0, others = 0;
        for (int r = 0; r < t->n_rows; r++) {
            int w = (int)strlen(md_cell(t, r, c, buf, sizeof buf));
            if (w > width[c]) width[c] = w;
            if (is_number(store_table_type(t, r, c)))
                numbers++;
            else if (store_table_type(t, r, c) != SQLITE_NULL)
                others++;
        }
        right[c] = numbers > 0 && others == 0;
        if (width[c] < 3) width[c] = 3;
    }
    for (int line = -2; line < t->n_rows; line++) {
        fputc('|', f);
        for (int c = 0; c < n; c++) {
            if (line == -1) {
                fputc(' ', f);
                for (int k = 0; k < width[c] - 1; k++)
                    fputc('-', f);
                fputs(right[c] ? ": |" : "- |", f);
                continue;
            }
            const char *text = line == -2 ? t->names[c] : md_cell(t, line, c, buf, sizeof buf);
            if (right[c])
                fprintf(f, " %*s |", width[c], text);
            else
                fprintf(f, " %-*s |", width[c], text);
        }
        fputc('\n', f);
    }
    mem_free(width);
    mem_free(right);
    if (ferror(f)) return err_set(err, ERR_FAIL, "cannot write the table: %s", strerror(errno));
    return 0;
}

static int table_write(FILE *f, const store_table_t *t, const char *format, err_t *err) {
    return strcmp(format, "csv") == 0 ? store_table_csv(f, t, err) : table_markdown(f, t, err);
}

/* ---- the store side of plot_make ------------------------------------------ */

/* Opens the store and checks the experiment is there. */
static int open_for(const char *db_path, const plot_figure_t *fig, const plot_params_t *params,
                    store_t **out, int64_t *experiment_id, err_t *err) {
    *out = NULL;
    store_t *s;
    if (store_open(&s, db_path, STORE_READONLY, err)) return -1;
    const char *experiment = param_experiment(fig, params);
    sqlite3_stmt *st = NULL;
    sqlite3 *db = store_db(s);
    if (sqlite3_prepare_v2(db, "SELECT id FROM experiment WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        err_set(err, ERR_FAIL, "%s: %s", db_path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        store_close(s);
        return -1;
    }
    sqlite3_bind_text(st, 1, experiment, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *experiment_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) {
        *out = s;
        return 0;
    }
    if (rc != SQLITE_DONE) {
        err_set(err, ERR_FAIL, "%s: %s", db_path, sqlite3_errmsg(db));
        store_close(s);
        return -1;
    }
    store_close(s);
    if (params && params->experiment)
        err_set(err, ERR_FAIL, "experiment %s is not in %s (mtlab ls --db %s lists them)",
                experiment, db_path, db_path);
    else
        err_set(err, ERR_FAIL, "experiment %s is not in %s: run build/mtlab run %s first",
                experiment, db_path, fig->sweep);
    return PLOT_NO_EXPERIMENT;
}

/* Opens, checks and queries; an experiment with nothing to show is an error. */
static int load(const char *db_path, const plot_figure_t *fig, const plot_params_t *params,
                store_table_t **out, err_t *err) {
    store_t *s;
    int64_t id = 0;
    int rc = open_for(db_path, fig, params, &s, &id, err);
    if (rc) return rc;
    rc = plot_query(s, fig, params, out, err);
    if (rc == 0 && (*out)->n_rows == 0) {
        store_counts_t counts = {0};
        store_counts(s, id, &counts, NULL);
        const char *metric = param_metric(fig, params);
        err_set(err, ERR_FAIL,
                "%s: experiment %s in %s has nothing to draw%s%s (%d done, %d pending, %d "
                "running, %d failed trials)",
                fig->name, param_experiment(fig, params), db_path, metric ? " for metric " : "",
                metric ? metric : "", counts.done, counts.pending, counts.running, counts.failed);
        store_table_free(*out);
        *out = NULL;
        rc = -1;
    }
    store_close(s);
    return rc;
}

/* ---- gnuplot ---------------------------------------------------------------- */

/* The path of the gnuplot program on $PATH, or false. */
static bool find_gnuplot(char *out, size_t size) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && (size_t)snprintf(out, size, "%.*s/gnuplot", (int)len, path) < size) {
            struct stat sb;
            if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode) && access(out, X_OK) == 0) return true;
        }
        path += len + (end ? 1 : 0);
    }
    return false;
}

bool plot_have_gnuplot(void) {
    char path[4096];
    return find_gnuplot(path, sizeof path);
}

/* Runs `gnuplot script`, collecting its stderr into messages.  0 when it
 * exits 0. */
static int run_gnuplot(const char *gnuplot, const char *script, char *messages, size_t size,
                       err_t *err) {
    int pipe_fd[2];
    messages[0] = '\0';
    if (pipe(pipe_fd) != 0) return err_set(err, ERR_FAIL, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipe_fd[0]);
        close(pipe_fd[1]);
        return err_set(err, ERR_FAIL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        dup2(pipe_fd[1], 2);
        close(pipe_fd[0]);
        close(pipe_fd[1]);
        execl(gnuplot, "gnuplot", script, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", gnuplot, strerror(errno));
        _exit(127);
    }
    close(pipe_fd[1]);
    size_t len = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(pipe_fd[0], chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (ssize_t i = 0; i < got && len + 1 < size; i++)
            messages[len++] = chunk[i];
    }
    messages[len] = '\0';
    close(pipe_fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err_set(err, ERR_FAIL, "waitpid: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    /* One line for err: the messages with their newlines as " | ". */
    char oneline[400];
    size_t k = 0;
    for (size_t i = 0; messages[i] && k + 4 < sizeof oneline; i++) {
        if (messages[i] == '\n') {
            if (messages[i + 1]) k += (size_t)snprintf(oneline + k, sizeof oneline - k, " | ");
        } else {
            oneline[k++] = messages[i];
        }
    }
    oneline[k] = '\0';
    if (WIFEXITED(status))
        return err_set(err, ERR_FAIL, "gnuplot %s failed (exit %d): %s", script,
                       WEXITSTATUS(status), oneline);
    return err_set(err, ERR_FAIL, "gnuplot %s died (signal %d): %s", script, WTERMSIG(status),
                   oneline);
}

/* ---- plot_make ------------------------------------------------------------- */

typedef struct {
    const gp_job_t *job;
    const store_table_t *t;
    const char *format;
} write_ctx_t;

static int write_script(FILE *f, void *ctx, err_t *err) {
    write_ctx_t *w = ctx;
    return gp_write_script(f, w->job, w->t, err);
}

static int write_table(FILE *f, void *ctx, err_t *err) {
    write_ctx_t *w = ctx;
    return table_write(f, w->t, w->format, err);
}

static bool is_figure_format(const char *format) {
    return strcmp(format, "png") == 0 || strcmp(format, "svg") == 0 || strcmp(format, "pdf") == 0;
}

int plot_make(const char *db_path, const char *name, const char *out_dir, const char *format,
              bool render, plot_output_t *out, err_t *err) {
    return plot_make_with(db_path, name, NULL, out_dir, format, render, out, err);
}

int plot_make_with(const char *db_path, const char *name, const plot_params_t *params,
                   const char *out_dir, const char *format, bool render, plot_output_t *out,
                   err_t *err) {
    memset(out, 0, sizeof *out);
    const plot_figure_t *fig = plot_find(name);
    if (!fig) return unknown_name(name, err);
    if (strlen(out_dir) + strlen(fig->name) + 8 >= sizeof out->script)
        return err_set(err, ERR_USAGE, "%s: path too long", out_dir);
    if (fig->kind == PLOT_FIGURE) {
        if (!format) format = "png";
        if (!is_figure_format(format))
            return err_set(err, ERR_USAGE, "%s is a figure: format png, svg or pdf, not '%s'",
                           fig->name, format);
    } else {
        format = format && strcmp(format, "csv") == 0 ? "csv" : "md";
    }

    store_table_t *t;
    int rc = load(db_path, fig, params, &t, err);
    if (rc) return rc;
    out->n_rows = t->n_rows;
    if (files_make_dirs(out_dir, err)) {
        store_table_free(t);
        return -1;
    }
    if (fig->kind == PLOT_TABLE) {
        snprintf(out->table, sizeof out->table, "%s/%s.%s", out_dir, fig->name, format);
        write_ctx_t w = {NULL, t, format};
        rc = write_atomically(out->table, write_table, &w, err);
        store_table_free(t);
        return rc;
    }

    char image_name[512];
    snprintf(image_name, sizeof image_name, "%s.%s", fig->name, format);
    snprintf(out->script, sizeof out->script, "%s/%s.gp", out_dir, fig->name);
    gp_job_t job = {fig,        db_path,   param_experiment(fig, params),
                    param_metric(fig, params), format, image_name,
                    params && params->band ? params->band : PLOT_DEFAULT_BAND};
    write_ctx_t w = {&job, t, format};
    rc = write_atomically(out->script, write_script, &w, err);
    store_table_free(t);
    if (rc || !render) return rc;

    char gnuplot[4096];
    if (!find_gnuplot(gnuplot, sizeof gnuplot)) {
        out->no_gnuplot = true;
        return 0;
    }
    char *image = out->image;
    snprintf(image, sizeof out->image, "%s/%s", out_dir, image_name);
    unlink(image); /* a stale image must not pass for a new one */
    struct stat sb;
    if (run_gnuplot(gnuplot, out->script, out->gnuplot_stderr, sizeof out->gnuplot_stderr, err)) {
        image[0] = '\0';
        return -1;
    }
    if (stat(image, &sb) != 0 || sb.st_size == 0) {
        err_set(err, ERR_FAIL, "gnuplot ran on %s but wrote no %s", out->script, image);
        image[0] = '\0';
        return -1;
    }
    out->rendered = true;
    return 0;
}

int plot_table(const char *db_path, const char *name, const char *format, FILE *f, err_t *err) {
    return plot_table_with(db_path, name, NULL, format, f, err);
}

int plot_table_with(const char *db_path, const char *name, const plot_params_t *params,
                    const char *format, FILE *f, err_t *err) {
    const plot_figure_t *fig = plot_find(name);
    if (!fig) return unknown_name(name, err);
    if (!format) format = "md";
    if (strcmp(format, "md") != 0 && strcmp(format, "csv") != 0)
        return err_set(err, ERR_USAGE, "table format md or csv, not '%s'", format);
    store_table_t *t;
    int rc = load(db_path, fig, params, &t, err);
    if (rc) return rc;
    rc = table_write(f, t, format, err);
    store_table_free(t);
    return rc;
}

int plot_render(const char *script, const char *image, plot_output_t *out, err_t *err) {
    char gnuplot[4096];
    out->rendered = false;
    out->image[0] = '\0';
    if (!find_gnuplot(gnuplot, sizeof gnuplot)) {
        out->no_gnuplot = true;
        return 0;
    }
    unlink(image); /* a stale image must not pass for a new one */
    if (run_gnuplot(gnuplot, script, out->gnuplot_stderr, sizeof out->gnuplot_stderr, err))
        return -1;
    struct stat sb;
    if (stat(image, &sb) != 0 || sb.st_size == 0)
        return err_set(err, ERR_FAIL, "gnuplot ran on %s but wrote no %s", script, image);
    snprintf(out->image, sizeof out->image, "%s", image);
    out->rendered = true;
    return 0;
}
