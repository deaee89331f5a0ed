/* cmd_keys.c -- `mtlab keys [PATTERN]`: every key a sweep file may set,
 * generated from the sweep key table (src/sweep/keys.c) and, for [model],
 * the model registry's hyper-parameter tables (model_hp_all): type and
 * range, default, whether it may be a list or distribution (grid), and its
 * meaning.  Nothing here restates a key, so the list cannot drift. */
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "core/numtext.h"
#include "models/model.h"
#include "sweep/keys.h"

/* A bound as text: "inf", "1e+09" -> "1000000000", "0.5". */
static void bound_text(double v, char *out, size_t n) {
    if (v == (double)(long long)v && v > -1e15 && v < 1e15)
        snprintf(out, n, "%lld", (long long)v);
    else
        num_to_text(v, out, n);
}

static void range_text(const sweep_key_t *k, char *out, size_t n) {
    char lo[32], hi[32];
    bound_text(k->min, lo, sizeof lo);
    bound_text(k->max, hi, sizeof hi);
    switch (k->type) {
    case KEY_INT:
        snprintf(out, n, "integer in [%s, %s]", lo, hi);
        break;
    case KEY_NUM:
        snprintf(out, n, "number in %c%s, %s%c", k->min_open ? '(' : '[', lo, hi,
                 k->max_open || k->max == INFINITY ? ')' : ']');
        break;
    case KEY_U64:
        snprintf(out, n, "seed: integer in [0, 2^63)");
        break;
    case KEY_BOOL:
        snprintf(out, n, "true or false");
        break;
    case KEY_WORD: {
        size_t len = (size_t)snprintf(out, n, "one of:");
        char words[256];
        snprintf(words, sizeof words, "%s", k->words);
        for (char *save, *w = strtok_r(words, " ", &save); w && len + 1 < n;
             w = strtok_r(NULL, " ", &save))
            len += (size_t)snprintf(out + len, n - len, " %s", w);
        break;
    }
    case KEY_MODEL: {
        int count;
        const model_ops_t *const *reg = model_registry(&count);
        size_t len = (size_t)snprintf(out, n, "models: ");
        for (int i = 0; i < count && len + 1 < n; i++)
            len += (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", reg[i]->name);
        break;
    }
    case KEY_NAME:
        snprintf(out, n, "name: [A-Za-z0-9._-]+");
        break;
    case KEY_TEXT:
        snprintf(out, n, "text");
        break;
    case KEY_INTS:
        snprintf(out, n, "integers in [%s, %s], space-separated", lo, hi);
        break;
    case KEY_NUMS:
        snprintf(out, n, "numbers in %c%s, %s%c, space-separated", k->min_open ? '(' : '[', lo, hi,
                 k->max_open || k->max == INFINITY ? ')' : ']');
        break;
    }
}

/* The default: a sweep-level key's text; a point key's for the default
 * model family (defaults of data and train do not depend on it); a model
 * hyper-parameter's per declaring family ("mmoe 8, omoe 8"), or one value
 * when they all agree. */
static void default_text(const sweep_key_t *k, char *out, size_t n) {
    if (k->flags & KEY_REQUIRED) {
        snprintf(out, n, "(required)");
        return;
    }
    if (!(k->flags & KEY_GRID)) {
        snprintf(out, n, "%s", k->def && k->def[0] ? k->def : "(empty)");
        return;
    }
    int count;
    const model_ops_t *const *reg = model_registry(&count);
    if (!k->hp) {
        if (!k->get_default) {
            snprintf(out, n, "(none: only when given)");
            return;
        }
        sweep_resolve_t r;
        sweep_resolve_init(&r, reg[0]->name, 1);
        sweep_key_default(k, &r, out, n);
        if (!out[0]) snprintf(out, n, "(empty)");
        return;
    }
    char first[64] = "", each[1024] = "";
    bool same = true;
    size_t len = 0;
    for (int i = 0; i < count; i++) {
        const int j = model_hp_find(reg[i], k->hp);
        if (j < 0) continue;
        char v[64];
        const model_hp_t *hp = &reg[i]->hp[j];
        if (hp->type == HP_WORD)
            model_hp_word(hp, hp->def, v, sizeof v);
        else
            bound_text(hp->def, v, sizeof v);
        if (!first[0])
            snprintf(first, sizeof first, "%s", v);
        else if (strcmp(first, v) != 0)
            same = false;
        if (len + 1 < sizeof each)
            len += (size_t)snprintf(each + len, sizeof each - len, "%s%s %s", len ? ", " : "",
                                    reg[i]->name, v);
    }
    snprintf(out, n, "%s", same ? first : each);
}

/* Which families declare a model hyper-parameter ("" for other keys, "all"
 * when every family does). */
static void families_text(const sweep_key_t *k, char *out, size_t n) {
    out[0] = '\0';
    if (!k->hp) return;
    int count, declared = 0;
    const model_ops_t *const *reg = model_registry(&count);
    size_t len = 0;
    for (int i = 0; i < count; i++)
        if (model_hp_find(reg[i], k->hp) >= 0 && len + 1 < n) {
            len += (size_t)snprintf(out + len, n - len, "%s%s", declared ? " " : "", reg[i]->name);
            declared++;
        }
    if (declared == count) snprintf(out, n, "all");
}

/* A Markdown table cell: '|' escaped so it cannot split the cell. */
static void md_cell(const char *text) {
    fputs(" ", stdout);
    for (const char *p = text; *p; p++) {
        if (*p == '|') putchar('\\');
        putchar(*p);
    }
    fputs(" |", stdout);
}

static bool key_matches(const sweep_key_t *k, const char *pattern) {
    return !pattern || strcmp(pattern, k->section) == 0 || strcmp(pattern, k->param) == 0 ||
           fnmatch(pattern, k->param, 0) == 0;
}

int cmd_keys(int argc, char **argv) {
    bool markdown = false;
    opt_t opts[] = {
        {"markdown", OPT_FLAG, &markdown, NULL, "print a Markdown table (for the README)", 1, 0, 0},
    };
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    err_t err = {0};
    const char *pos[1];
    int n_pos;
    int rc = cli_options(
        "keys", "mtlab keys [SECTION | KEY | PATTERN] [--markdown]",
        "Lists every key a sweep file may set ([experiment], [data], [train], [model],\n"
        "[record]): its type and range, its default, whether it may be a list or a\n"
        "distribution (grid: one trial per value), and what it means.  A [model] key\n"
        "applies to the families that declare it (for:), with each family's default.\n"
        "Examples:  mtlab keys data     mtlab keys 'train.*'     mtlab keys model.experts",
        opts, n_opts, argc, argv, pos, 1, &n_pos);
    if (rc != CLI_CONTINUE) return rc;
    const char *pattern = n_pos ? pos[0] : NULL;

    int n;
    const sweep_key_t *keys = sweep_keys(&n);
    int shown = 0;
    if (markdown) printf("| key | type | default | grid | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const sweep_key_t *k = &keys[i];
        if (!key_matches(k, pattern)) continue;
        char range[512], def[1024], fam[512];
        range_text(k, range, sizeof range);
        default_text(k, def, sizeof def);
        families_text(k, fam, sizeof fam);
        const char *grid = (k->flags & KEY_GRID) ? "yes" : "no";
        if (markdown) {
            char param[128], meaning[1200];
            snprintf(param, sizeof param, "`%s`", k->param);
            snprintf(meaning, sizeof meaning, "%s%s%s%s", k->help, fam[0] ? " (for: " : "", fam,
                     fam[0] ? ")" : "");
            fputs("|", stdout);
            md_cell(param);
            md_cell(range);
            md_cell(def);
            md_cell(grid);
            md_cell(meaning);
            putchar('\n');
        } else {
            printf("%s\n  type:    %s\n  default: %s\n  grid:    %s\n", k->param, range, def, grid);
            if (fam[0]) printf("  for:     %s\n", fam);
            printf("  %s\n", k->help);
        }
        shown++;
    }
    if (shown == 0) {
        const char *names[SWEEP_MAX_KEYS];
        for (int i = 0; i < n; i++)
            names[i] = keys[i].param;
        const char *near = sweep_suggest(pattern, names, n);
        if (near)
            err_set(&err, ERR_USAGE, "no key '%s' (did you mean '%s'?)", pattern, near);
        else
            err_set(&err, ERR_USAGE, "no key matches '%s' (mtlab keys lists them all)", pattern);
        return cli_fail("keys", &err);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        err_set(&err, ERR_FAIL, "cannot write to standard output");
        return cli_fail("keys", &err);
    }
    return 0;
}
