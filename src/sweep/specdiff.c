/* specdiff.c -- line diff of two spec texts (see specdiff.h). */
#include "sweep/specdiff.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

typedef struct {
    const char *start;
    size_t len;
} line_t;

/* The lines of text (without their '\n'; a final '\n' ends the last line,
 * it does not start an empty one).  Returns the count, -1 out of memory. */
static int split_lines(const char *text, line_t **out) {
    int n = 0;
    for (const char *p = text; *p; n++) {
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    *out = mem_calloc((size_t)n + 1, sizeof **out);
    if (!*out) return -1;
    int i = 0;
    for (const char *p = text; *p; i++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        (*out)[i] = (line_t){p, len};
        p += len + (nl != NULL);
    }
    return n;
}

static bool same_line(line_t a, line_t b) {
    return a.len == b.len && memcmp(a.start, b.start, a.len) == 0;
}

/* A growing output string. */
typedef struct {
    char *text;
    size_t len, cap;
    bool oom;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->oom) return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *grown = mem_realloc(o->text, cap);
        if (!grown) {
            o->oom = true;
            return;
        }
        o->text = grown;
        o->cap = cap;
    }
    memcpy(o->text + o->len, s, n);
    o->len += n;
    o->text[o->len] = '\0';
}

/* An edit script over the middle part: ops[i] is '=', '-' or '+'. */
static int edit_script(const line_t *a, int na, const line_t *b, int nb, char **ops, int *n_ops) {
    *ops = mem_alloc((size_t)na + (size_t)nb + 1);
    if (!*ops) return -1;
    int n = 0;
    if ((long long)(na + 1) * (nb + 1) > SPECDIFF_MAX_CELLS) { /* too large: replace it all */
        for (int i = 0; i < na; i++)
            (*ops)[n++] = '-';
        for (int j = 0; j < nb; j++)
            (*ops)[n++] = '+';
        *n_ops = n;
        return 0;
    }
    /* lcs[i][j]: the longest common subsequence of a[i..] and b[j..] */
    const size_t w = (size_t)nb + 1;
    int *lcs = mem_calloc(((size_t)na + 1) * w, sizeof *lcs);
    if (!lcs) {
        mem_free(*ops);
        return -1;
    }
    for (int i = na - 1; i >= 0; i--)
        for (int j = nb - 1; j >= 0; j--)
            lcs[i * w + j] = same_line(a[i], b[j])
                                 ? lcs[(i + 1) * w + j + 1] + 1
                                 : (lcs[(i + 1) * w + j] > lcs[i * w + j + 1] ? lcs[(i + 1) * w + j]
                                                                              : lcs[i * w + j + 1]);
    int i = 0, j = 0;
    while (i < na || j < nb) {
        if (i < na && j < nb && same_line(a[i], b[j])) {
            (*ops)[n++] = '=';
            i++, j++;
        } else if (i < na && (j == nb || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) {
            (*ops)[n++] = '-'; /* removed lines first, as diff -u shows a change */
            i++;
        } else {
            (*ops)[n++] = '+';
            j++;
        }
    }
    mem_free(lcs);
    *n_ops = n;
    return 0;
}

/* The common first and last lines, and the edit script of the rest. */
typedef struct {
    line_t *a, *b;
    int na, nb, prefix, suffix;
    char *ops;
    int n_ops;
} diff_t;

static void diff_free(diff_t *d) {
    mem_free(d->a);
    mem_free(d->b);
    mem_free(d->ops);
}

static int diff_make(const char *old_text, const char *new_text, diff_t *d) {
    memset(d, 0, sizeof *d);
    d->na = split_lines(old_text, &d->a);
    d->nb = d->na < 0 ? -1 : split_lines(new_text, &d->b);
    if (d->na < 0 || d->nb < 0) return -1;
    while (d->prefix < d->na && d->prefix < d->nb && same_line(d->a[d->prefix], d->b[d->prefix]))
        d->prefix++;
    while (d->suffix < d->na - d->prefix && d->suffix < d->nb - d->prefix &&
           same_line(d->a[d->na - 1 - d->suffix], d->b[d->nb - 1 - d->suffix]))
        d->suffix++;
    return edit_script(d->a + d->prefix, d->na - d->prefix - d->suffix, d->b + d->prefix,
                       d->nb - d->prefix - d->suffix, &d->ops, &d->n_ops);
}

char *specdiff_text(const char *old_text, const char *new_text, int *n_changed) {
    diff_t d;
    out_t o = {0};
    int changed = 0;
    put(&o, "", 0);
    if (diff_make(old_text, new_text, &d) == 0) {
        int i = d.prefix, j = d.prefix; /* 0-based lines of old and new */
        for (int k = 0; k < d.n_ops; k++) {
            if (d.ops[k] == '=') {
                i++, j++;
                continue;
            }
            if (k == 0 || d.ops[k - 1] == '=') {
                char head[96];
                int w = snprintf(head, sizeof head, "@@ stored line %d, new line %d @@\n", i + 1,
                                 j + 1);
                put(&o, head, (size_t)w);
            }
            const line_t *l = d.ops[k] == '-' ? &d.a[i++] : &d.b[j++];
            put(&o, d.ops[k] == '-' ? "-" : "+", 1);
            put(&o, l->start, l->len);
            put(&o, "\n", 1);
            changed++;
        }
    } else {
        o.oom = true;
    }
    diff_free(&d);
    if (o.oom) {
        mem_free(o.text);
        return NULL;
    }
    if (n_changed) *n_changed = changed;
    return o.text;
}

/* 'TEXT' cut to about 60 bytes, or "(none)" for a missing line. */
static void quote_line(const line_t *l, char *out, size_t n) {
    if (!l) {
        snprintf(out, n, "(none)");
        return;
    }
    const int len = l->len > 60 ? 57 : (int)l->len;
    snprintf(out, n, "'%.*s%s'", len, l->start, l->len > 60 ? "..." : "");
}

void specdiff_summary(const char *old_text, const char *new_text, char *out, size_t n) {
    diff_t d;
    if (diff_make(old_text, new_text, &d)) {
        snprintf(out, n, "the texts differ");
        diff_free(&d);
        return;
    }
    int changed = 0, first_i = -1, i = d.prefix, j = d.prefix;
    bool in_first = false; /* inside the first run of changed lines */
    const line_t *removed = NULL, *added = NULL;
    for (int k = 0; k < d.n_ops; k++) {
        if (d.ops[k] == '=') {
            i++, j++;
            in_first = false;
            continue;
        }
        changed++;
        if (first_i < 0) first_i = i, in_first = true;
        if (d.ops[k] == '-') {
            if (in_first && !removed) removed = &d.a[i];
            i++;
        } else {
            if (in_first && !added) added = &d.b[j];
            j++;
        }
    }
    char a[80], b[80];
    quote_line(removed, a, sizeof a);
    quote_line(added, b, sizeof b);
    if (changed == 0)
        snprintf(out, n, "the texts are the same");
    else
        snprintf(out, n, "%d line%s differ%s, first at stored line %d: %s -> %s", changed,
                 changed == 1 ? "" : "s", changed == 1 ? "s" : "", first_i + 1, a, b);
    diff_free(&d);
}
