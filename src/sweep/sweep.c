/* sweep.c -- reading, validating and expanding sweep files (see sweep.h).
 *
 * Reading.  libinih parses the file; we feed it through ini_parse_stream with
 * our own line reader, which
 *   - counts lines, so every key and section carries the line it came from
 *     (libinih's handler gets none in Debian's build: INI_HANDLER_LINENO 0),
 *     and our count stays equal to libinih's, whose error return is a line;
 *   - strips leading blanks, so an indented line is an ordinary line and
 *     never a libinih multi-line continuation (which would silently append to
 *     the previous key);
 *   - removes inline comments: ';' or '#' preceded by a blank, to the end of
 *     the line (Debian's libinih only knows ';');
 *   - refuses lines longer than libinih's buffer (200 bytes in Debian's build)
 *     instead of letting libinih split them into two lines.
 * The reader and handler only collect (line, section, key, value) items;
 * validation runs afterwards in file order, so the first error reported is
 * the first in the file (a libinih syntax error included).
 *
 * Expansion.  Grid dimensions are the list-valued point keys in file order,
 * the first outermost; then the model name; then, per model, the lists of its
 * [model.<name>] section; then the `samples` draws.  A [model.<name>] value
 * replaces the [model] value for that model.  Points with the same canonical
 * config (say a [model] list that a [model.<name>] value overrides, or two
 * equal random draws) are kept once, at their first position: a config is a
 * trial's identity.
 *
 * Random search.  The value of distribution-valued key K in draw s (0-based)
 * of a grid point is drawn from PCG32 (seed, RNG_STREAM_SWEEP_DRAW), one fresh
 * generator per (grid point, key, draw), with
 *     seed = H(experiment seed, "draw|" + G + "|" + K, s)
 * where G lists the grid point's given values in key-table order
 * ("key=value;", a distribution as its canonical text, model.name included).
 * So draws do not depend on file order, on other distribution keys or on the
 * sample count, and differ between grid points and models.  That is the
 * INDEPENDENT rule ([experiment] draws = independent; every experiment
 * stored before schema version 9).  The default PAIRED rule shares the draws
 * across grid points and models:
 *     seed = H(experiment seed, "paired|" + K + "=" + D, s)
 * where D is the distribution's canonical text, so draw s of the same
 * distribution is the same value everywhere (a [model.<name>] distribution
 * of other bounds draws its own).  uniform(a,b) is
 * a + (b-a)u, loguniform(a,b) is exp(ln a + (ln b - ln a)u), u = rng_uniform;
 * randint(a,b) is a + rng_below(b-a+1) (a 64-bit variant for wide ranges);
 * choice picks an item with rng_below(n).
 *
 * Seeds.  H(seed, text, i) is FNV-1a 64 over the 8 little-endian bytes of
 * seed, the bytes of text, one 0 byte and the 8 little-endian bytes of i,
 * then the splitmix64 finaliser, masked to 63 bits (the store keeps seeds as
 * signed SQLite integers), 0 mapped to 1.  data_seed = H(seed, data_config,
 * repeat), init_seed = H(seed, config, repeat).  H, the stream number and the
 * draw rule are part of the reproducibility contract: changing any of them
 * changes the identity of every stored result (tests pin golden values). */
#include "core/numtext.h"
#include "core/mem.h"
#include "sweep/sweep.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "models/model.h"
#include "sweep/keys.h"

#define SWEEP_MAX_POINTS  100000 /* grid x models x samples, before deduplication */
#define SWEEP_MAX_LIST    4096   /* items of one list or choice */
#define SECTION_MAX       64
#define NAME_MAX_LEN      64
#define VALUE_CAP         1024 /* canonical text of one value, NUL included (64 alpha_values) */
#define CONFIG_CAP        4096 /* a point's canonical config, NUL included */
#define DATA_CONFIG_CAP   2048 /* its data.* part */
#define SWEEP_TEXT_MAX    512 /* sweep-level values (description) */

/* ---- the seed hash ----------------------------------------------------------- */

static uint64_t fnv_byte(uint64_t h, unsigned char b) {
    return (h ^ b) * 0x100000001b3ULL;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v) {
    for (int i = 0; i < 8; i++)
        h = fnv_byte(h, (unsigned char)(v >> (8 * i)));
    return h;
}

/* H of the header comment. */
static uint64_t sweep_hash(uint64_t seed, const char *text, uint64_t index) {
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv_u64(h, seed);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        h = fnv_byte(h, *c);
    h = fnv_byte(h, 0);
    h = fnv_u64(h, index);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    h &= 0x7fffffffffffffffULL;
    return h ? h : 1;
}

/* ---- the loaded sweep ----------------------------------------------------------- */

/* Where the file set a key: for sweep_key_line. */
typedef struct {
    int key;  /* index into the key table */
    int line; /* of the key = value line (a [scale.<name>] line when a scale replaced it) */
    char model[sizeof(((trial_spec_t *)0)->model)]; /* [model.<model>] override, or "" */
} key_line_t;

/* sweep_t plus an index of configs (open addressing, point index + 1, 0 empty)
 * and the lines of the file's keys.  Every sweep_t comes from sweep_load, so
 * sweep_find_point and sweep_key_line may use them. */
typedef struct {
    sweep_t pub; /* first: a sweep_t * is a sweep_full_t * */
    int cap_points;
    int *slots;
    size_t n_slots; /* a power of two, > 2 n_points */
    key_line_t *key_lines;
    int n_key_lines;
} sweep_full_t;

static uint64_t string_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        h = fnv_byte(h, *c);
    return h;
}

static int index_rebuild(sweep_full_t *f, size_t n_slots) {
    int *slots = mem_calloc(n_slots, sizeof *slots);
    if (!slots) return -1;
    mem_free(f->slots);
    f->slots = slots;
    f->n_slots = n_slots;
    for (int p = 0; p < f->pub.n_points; p++) {
        size_t i = string_hash(f->pub.points[p].config) & (n_slots - 1);
        while (slots[i])
            i = (i + 1) & (n_slots - 1);
        slots[i] = p + 1;
    }
    return 0;
}

int sweep_find_point(const sweep_t *s, const char *config) {
    const sweep_full_t *f = (const sweep_full_t *)s;
    if (!f->slots) {
        for (int p = 0; p < s->n_points; p++)
            if (strcmp(s->points[p].config, config) == 0) return p;
        return -1;
    }
    for (size_t i = string_hash(config) & (f->n_slots - 1); f->slots[i];
         i = (i + 1) & (f->n_slots - 1))
        if (strcmp(s->points[f->slots[i] - 1].config, config) == 0) return f->slots[i] - 1;
    return -1;
}

int sweep_key_line(const sweep_t *s, int point, const char *key) {
    assert(point >= 0 && point < s->n_points);
    const sweep_full_t *f = (const sweep_full_t *)s;
    const char *dot = strchr(key, '.');
    char section[SECTION_MAX];
    if (!dot || (size_t)(dot - key) >= sizeof section) return 0;
    snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
    const int k = sweep_key_find(section, dot + 1);
    int line = 0;
    for (int i = 0; k >= 0 && i < f->n_key_lines; i++) {
        const key_line_t *kl = &f->key_lines[i];
        if (kl->key != k) continue;
        if (kl->model[0] == '\0')
            line = kl->line;
        else if (strcmp(kl->model, s->points[point].spec.model) == 0)
            return kl->line; /* the [model.<name>] value replaces the [model] one */
    }
    return line;
}

void sweep_free(sweep_t *s) {
    if (!s) return;
    sweep_full_t *f = (sweep_full_t *)s;
    for (int p = 0; p < s->n_points; p++)
        mem_free(s->points[p].params); /* the point's one allocation (see add_point) */
    mem_free(s->points);
    mem_free(s->text);
    mem_free(s->overrides);
    mem_free(f->slots);
    mem_free(f->key_lines);
    mem_free(f);
}

uint64_t sweep_data_seed(const sweep_t *s, int point, int repeat) {
    assert(point >= 0 && point < s->n_points);
    return sweep_hash(s->seed, s->points[point].data_config, (uint64_t)repeat);
}

uint64_t sweep_init_seed(const sweep_t *s, int point, int repeat) {
    assert(point >= 0 && point < s->n_points);
    return sweep_hash(s->seed, s->points[point].config, (uint64_t)repeat);
}

void sweep_trial(const sweep_t *s, int index, int *point, int *repeat, trial_spec_t *spec) {
    assert(index >= 0 && index < s->n_trials);
    const int p = index % s->n_points, r = index / s->n_points;
    if (point) *point = p;
    if (repeat) *repeat = r;
    if (spec) {
        *spec = s->points[p].spec;
        spec->data_seed = sweep_data_seed(s, p, r);
        spec->init_seed = sweep_init_seed(s, p, r);
    }
}

/* ---- reading: items in file order ---------------------------------------------- */

typedef struct {
    int line;
    bool header; /* a [section] line (key and value unused) */
    char section[SECTION_MAX];
    char key[NAME_MAX_LEN];
    char *value;
} item_t;

typedef struct {
    const char *text;
    size_t pos;
    int line;
    char section[SECTION_MAX];
    int too_long_line; /* first line longer than libinih's buffer, or 0 */
    int max_line;      /* the longest line libinih takes (its buffer less '\n', '\0') */
    item_t *items;
    int n_items, cap_items;
    bool oom;
} reader_t;

static item_t *add_item(reader_t *rd) {
    if (rd->n_items == rd->cap_items) {
        int cap = rd->cap_items ? 2 * rd->cap_items : 64;
        item_t *grown = mem_realloc(rd->items, sizeof *grown * (size_t)cap);
        if (!grown) {
            rd->oom = true;
            return NULL;
        }
        rd->items = grown;
        rd->cap_items = cap;
    }
    item_t *it = &rd->items[rd->n_items++];
    memset(it, 0, sizeof *it);
    it->line = rd->line;
    return it;
}

static void trim_copy(char *out, size_t n, const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    snprintf(out, n, "%.*s", (int)len, s);
}

/* libinih's ini_reader: hands over one line per call (see the top comment). */
static char *read_line(char *str, int num, void *stream) {
    reader_t *rd = stream;
    const char *line = rd->text + rd->pos;
    if (*line == '\0') return NULL;
    size_t len = strcspn(line, "\n");
    rd->pos += len + (line[len] == '\n');
    rd->line++;
    if (rd->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 BOM */
        line += 3;
        len -= 3;
    }
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    size_t end = len;
    for (size_t i = start + 1; i < len; i++)
        if ((line[i] == ';' || line[i] == '#') && isspace((unsigned char)line[i - 1])) {
            end = i;
            break;
        }
    const size_t n = end - start;
    rd->max_line = num - 2;
    if (n + 2 > (size_t)num) { /* room for '\n' and '\0' */
        if (!rd->too_long_line) rd->too_long_line = rd->line;
        snprintf(str, (size_t)num, "\n");
        return str;
    }
    memcpy(str, line + start, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    if (str[0] == '[') {
        const char *close = memchr(str, ']', n);
        if (close) { /* a section line (without ']' it is libinih's syntax error) */
            trim_copy(rd->section, sizeof rd->section, str + 1, (size_t)(close - str - 1));
            item_t *it = add_item(rd);
            if (it) {
                it->header = true;
                snprintf(it->section, sizeof it->section, "%s", rd->section);
            }
        }
    }
    return str;
}

/* libinih's handler: records the pair under OUR section (libinih truncates
 * long section names) and the current line. */
static int on_pair(void *user, const char *section, const char *name, const char *value) {
    reader_t *rd = user;
    item_t *it = add_item(rd);
    if (!it) return 0;
    snprintf(it->section, sizeof it->section, "%s", rd->section);
    snprintf(it->key, sizeof it->key, "%s", name);
    it->value = mem_strdup(value ? value : "");
    if (!it->value) {
        rd->oom = true;
        return 0;
    }
    return 1;
}

static void reader_free(reader_t *rd) {
    for (int i = 0; i < rd->n_items; i++)
        mem_free(rd->items[i].value);
    mem_free(rd->items);
}

/* ---- validation: entries ----------------------------------------------------------- */

typedef enum { DIST_NONE = 0, DIST_UNIFORM, DIST_LOGUNIFORM, DIST_RANDINT, DIST_CHOICE } dist_t;

typedef struct {
    int key; /* index into the key table */
    int line;
    char section[SECTION_MAX]; /* as written: "train", "model.mmoe" */
    const char *model;         /* [model.<x>] entries: x (points into section); else NULL */
    int n_values;              /* list items (1: a scalar) or choice items */
    char (*values)[VALUE_CAP]; /* canonical items */
    dist_t dist;
    double a, b;          /* uniform, loguniform */
    long long ia, ib;     /* randint */
    char dist_text[1024]; /* canonical distribution text */
} entry_t;

typedef struct {
    const char *path;
    sweep_full_t *f;
    const sweep_key_t *keys;
    int n_keys;
    entry_t *entries;
    int n_entries;
    int experiment_line; /* line of the first [experiment] header, or 0 */
    int model_line;      /* line of the first [model] header, or 0 */
    /* labels[line - 1], when not NULL, names the setting of a "line" in
     * errors (a file's lines name FILE:LINE): every line of
     * sweep_from_settings, the command-line overrides of sweep_load_opts
     * (numbered after the file's last line).  NULL: none. */
    const char *const *labels;
    bool settings; /* sweep_from_settings: one trial from settings, no file */
} ctx_t;

/* The label of `line` (see ctx_t), or NULL for a file's line. */
static const char *label_of(const ctx_t *c, int line) {
    return c->labels && line > 0 ? c->labels[line - 1] : NULL;
}

static const char *const dist_names[] = {"", "uniform", "loguniform", "randint", "choice"};

static int usage_at(ctx_t *c, err_t *err, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int usage_at(ctx_t *c, err_t *err, int line, const char *fmt, ...) {
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (label_of(c, line)) return err_set(err, ERR_USAGE, "%s: %s", label_of(c, line), msg);
    if (line > 0) return err_set(err, ERR_USAGE, "%s:%d: %s", c->path, line, msg);
    return err_set(err, ERR_USAGE, "%s: %s", c->path, msg);
}

static const entry_t *find_entry(const ctx_t *c, const char *section, int key) {
    for (int i = 0; i < c->n_entries; i++)
        if (c->entries[i].key == key && strcmp(c->entries[i].section, section) == 0)
            return &c->entries[i];
    return NULL;
}

/* Any entry (in any section) giving this key. */
static const entry_t *find_key(const ctx_t *c, const char *section, const char *name) {
    int key = sweep_key_find(section, name);
    for (int i = 0; i < c->n_entries; i++)
        if (c->entries[i].key == key) return &c->entries[i];
    return NULL;
}

static bool is_model_section(const char *section) {
    return strncmp(section, "model.", 6) == 0;
}

static bool is_scale_section(const char *section) {
    return strncmp(section, "scale.", 6) == 0;
}

static int check_section(ctx_t *c, const item_t *it, err_t *err) {
    static const char *const bases[] = {"experiment", "data", "train", "model", "record"};
    if (is_scale_section(it->section)) {
        if (it->section[6] == '\0')
            return usage_at(c, err, it->line, "unknown section [scale.] (expected [scale.<name>])");
        return 0;
    }
    const int n_bases = (int)(sizeof bases / sizeof bases[0]);
    for (int i = 0; i < n_bases; i++)
        if (strcmp(it->section, bases[i]) == 0) {
            if (i == 0 && !c->experiment_line) c->experiment_line = it->line;
            if (i == 3 && !c->model_line) c->model_line = it->line;
            return 0;
        }
    if (is_model_section(it->section)) {
        if (it->section[6] == '\0')
            return usage_at(c, err, it->line, "unknown section [model.] (expected [model.<name>])");
        char msg[400];
        const sweep_key_t *name = &c->keys[sweep_key_find("model", "name")];
        char canon[VALUE_CAP];
        if (sweep_key_canon(name, it->section + 6, canon, sizeof canon, msg, sizeof msg))
            return usage_at(c, err, it->line, "[%s]: %s", it->section, msg);
        return 0;
    }
    const char *guess = sweep_suggest(it->section, bases, n_bases);
    if (!guess && strchr(it->section, '.')) guess = "model.<name>";
    if (guess)
        return usage_at(c, err, it->line, "unknown section [%s] (did you mean [%s]?)", it->section,
                        guess);
    return usage_at(c, err, it->line,
                    "unknown section [%s] (known: [experiment], [data], [train], [model], "
                    "[model.<name>], [record], [scale.<name>])",
                    it->section);
}

static int unknown_key(ctx_t *c, const item_t *it, const char *base, err_t *err) {
    const char *names[SWEEP_MAX_KEYS] = {0};
    int n = 0;
    for (int i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].section, base) == 0 &&
            !(is_model_section(it->section) && strcmp(c->keys[i].name, "name") == 0))
            names[n++] = c->keys[i].name;
    for (int i = 0; i < c->n_keys; i++) /* right key, wrong section */
        if (strcmp(c->keys[i].name, it->key) == 0 && strcmp(c->keys[i].section, base) != 0)
            return usage_at(c, err, it->line, "unknown key '%s' in [%s] (it belongs in [%s])",
                            it->key, it->section, c->keys[i].section);
    const char *guess = sweep_suggest(it->key, names, n);
    if (guess)
        return usage_at(c, err, it->line, "unknown key '%s' in [%s] (did you mean '%s'?)", it->key,
                        it->section, guess);
    char known[400] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", names[i]);
        if (w > 0 && (size_t)w < sizeof known - len) len += (size_t)w;
    }
    return usage_at(c, err, it->line, "unknown key '%s' in [%s] (known: %s)", it->key, it->section,
                    known);
}

/* Splits s on commas into trimmed items (s is modified).  Returns the count,
 * or -1 when there are more than max. */
static int split_commas(char *s, char **items, int max) {
    int n = 0;
    for (char *p = s;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (n == max) return -1;
        while (isspace((unsigned char)*p))
            p++;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        items[n++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return n;
}

/* "name(" at the start of raw: the distribution's name length, else 0. */
static size_t dist_prefix(const char *raw) {
    size_t n = 0;
    while (isalpha((unsigned char)raw[n]) || raw[n] == '_')
        n++;
    size_t p = n;
    while (raw[p] == ' ' || raw[p] == '\t')
        p++;
    return n > 0 && raw[p] == '(' ? n : 0;
}

static int alloc_values(entry_t *e, int n) {
    e->values = mem_calloc((size_t)n, sizeof *e->values);
    e->n_values = n;
    return e->values ? 0 : -1;
}

/* Parses a distribution value into e.  msg receives the error. */
static int parse_distribution(const sweep_key_t *k, entry_t *e, const char *raw, size_t name_len,
                              char *msg, size_t msg_n) {
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(name_len < 31 ? name_len : 31), raw);
    for (int d = DIST_UNIFORM; d <= DIST_CHOICE; d++)
        if (strcmp(name, dist_names[d]) == 0) e->dist = (dist_t)d;
    if (e->dist == DIST_NONE) {
        snprintf(msg, msg_n,
                 "unknown distribution '%s' (known: uniform, loguniform, choice, randint)", name);
        return -1;
    }
    if (!(k->flags & KEY_GRID)) {
        snprintf(msg, msg_n, "takes a single value, not a distribution");
        return -1;
    }
    if (k->type == KEY_MODEL) {
        snprintf(msg, msg_n, "the model name cannot be drawn at random (give a list)");
        return -1;
    }
    if (e->dist != DIST_CHOICE && !sweep_key_numeric(k)) {
        snprintf(msg, msg_n, "%s() needs a numeric key (use choice(...) or a list)", name);
        return -1;
    }
    if ((e->dist == DIST_UNIFORM || e->dist == DIST_LOGUNIFORM) && k->type != KEY_NUM) {
        snprintf(msg, msg_n, "%s() draws real numbers; use randint(a,b) for an integer key", name);
        return -1;
    }
    const char *open = strchr(raw, '(');
    size_t len = strlen(open);
    if (open[len - 1] != ')' || memchr(open + 1, ')', len - 2) || memchr(open + 1, '(', len - 2)) {
        snprintf(msg, msg_n, "malformed %s(...): expected %s(a,b) with nothing after ')'", name,
                 name);
        return -1;
    }
    char *inner = strndup(open + 1, len - 2);
    char **args = mem_alloc(sizeof *args * SWEEP_MAX_LIST);
    int status = -1;
    if (!inner || !args) {
        snprintf(msg, msg_n, "out of memory");
        goto done;
    }
    int n = split_commas(inner, args, SWEEP_MAX_LIST);
    if (n < 0) {
        snprintf(msg, msg_n, "%s() has more than %d arguments", name, SWEEP_MAX_LIST);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (args[i][0] == '\0') {
            snprintf(msg, msg_n, "%s(): argument %d is empty", name, i + 1);
            goto done;
        }
    if (e->dist != DIST_CHOICE && n != 2) {
        snprintf(msg, msg_n, "%s() takes 2 arguments (a,b), not %d", name, n);
        goto done;
    }
    if (alloc_values(e, n)) {
        snprintf(msg, msg_n, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char item_msg[256];
        if (sweep_key_canon(k, args[i], e->values[i], sizeof e->values[i], item_msg,
                            sizeof item_msg)) {
            if (e->dist == DIST_CHOICE)
                snprintf(msg, msg_n, "choice(): %s", item_msg);
            else
                snprintf(msg, msg_n, "%s(): bound %s", name, item_msg);
            goto done;
        }
    }
    if (e->dist == DIST_RANDINT) {
        char *end;
        errno = 0;
        e->ia = strtoll(e->values[0], &end, 10);
        bool int_a = *end == '\0' && errno == 0;
        e->ib = strtoll(e->values[1], &end, 10);
        if (!int_a || *end != '\0' || errno) {
            snprintf(msg, msg_n, "randint(): bounds must be integers, not %s and %s", args[0],
                     args[1]);
            goto done;
        }
        if (e->ia > e->ib) {
            snprintf(msg, msg_n, "randint(): lower bound %s is above upper bound %s", args[0],
                     args[1]);
            goto done;
        }
    } else if (e->dist != DIST_CHOICE) {
        e->a = strtod(e->values[0], NULL);
        e->b = strtod(e->values[1], NULL);
        if (!(e->a < e->b)) {
            snprintf(msg, msg_n, "%s(): lower bound %s must be below upper bound %s", name, args[0],
                     args[1]);
            goto done;
        }
        if (e->dist == DIST_LOGUNIFORM && !(e->a > 0)) {
            snprintf(msg, msg_n, "loguniform(): bounds must be positive, not %s", args[0]);
            goto done;
        }
    }
    size_t pos = (size_t)snprintf(e->dist_text, sizeof e->dist_text, "%s(", name);
    for (int i = 0; i < n && pos < sizeof e->dist_text; i++)
        pos += (size_t)snprintf(e->dist_text + pos, sizeof e->dist_text - pos, "%s%s", i ? "," : "",
                                e->values[i]);
    if (pos + 2 > sizeof e->dist_text) {
        snprintf(msg, msg_n, "%s(...) is too long", name);
        goto done;
    }
    strcat(e->dist_text, ")");
    status = 0;
done:
    mem_free(inner);
    mem_free(args);
    return status;
}

/* Parses a list (or scalar) of a point key into e. */
static int parse_list(const sweep_key_t *k, entry_t *e, const char *raw, char *msg, size_t msg_n) {
    char *copy = mem_strdup(raw);
    char **items = mem_alloc(sizeof *items * SWEEP_MAX_LIST);
    int status = -1;
    if (!copy || !items) {
        snprintf(msg, msg_n, "out of memory");
        goto done;
    }
    int n = split_commas(copy, items, SWEEP_MAX_LIST);
    if (n < 0) {
        snprintf(msg, msg_n, "more than %d list items", SWEEP_MAX_LIST);
        goto done;
    }
    if (alloc_values(e, n)) {
        snprintf(msg, msg_n, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (items[i][0] == '\0') {
            snprintf(msg, msg_n, "list item %d of %d is empty", i + 1, n);
            goto done;
        }
        if (dist_prefix(items[i])) {
            snprintf(msg, msg_n, "a distribution cannot be part of a list");
            goto done;
        }
        if (sweep_key_canon(k, items[i], e->values[i], sizeof e->values[i], msg, msg_n)) goto done;
        for (int j = 0; j < i; j++)
            if (strcmp(e->values[i], e->values[j]) == 0) {
                snprintf(msg, msg_n, "'%s' is listed twice%s", e->values[i],
                         k->type == KEY_INTS || k->type == KEY_NUMS
                             ? " (commas make a grid; separate a vector's items with spaces)"
                             : "");
                goto done;
            }
    }
    status = 0;
done:
    mem_free(copy);
    mem_free(items);
    return status;
}

/* Validates one key = value item and appends its entry. */
static int add_entry(ctx_t *c, const item_t *it, err_t *err) {
    if (it->section[0] == '\0')
        return usage_at(c, err, it->line, "'%s' is outside any section (start with [experiment])",
                        it->key);
    if (it->key[0] == '\0') return usage_at(c, err, it->line, "missing key name before '='");
    const bool override = is_model_section(it->section);
    const char *base = override ? "model" : it->section;
    int key = sweep_key_find(base, it->key);
    if (override && key >= 0 && strcmp(it->key, "name") == 0)
        return usage_at(c, err, it->line,
                        "[%s] name: not allowed here (list the models in [model] name)",
                        it->section);
    if (key < 0) return unknown_key(c, it, base, err);
    const entry_t *dup = find_entry(c, it->section, key);
    if (dup && label_of(c, dup->line) && label_of(c, it->line))
        return usage_at(c, err, it->line, "[%s] %s: given twice (%s and %s)", it->section, it->key,
                        c->labels[dup->line - 1], c->labels[it->line - 1]);
    if (dup)
        return usage_at(c, err, it->line, "[%s] %s: duplicate key (lines %d and %d)", it->section,
                        it->key, dup->line, it->line);

    const sweep_key_t *k = &c->keys[key];
    entry_t *e = &c->entries[c->n_entries];
    memset(e, 0, sizeof *e);
    e->key = key;
    e->line = it->line;
    snprintf(e->section, sizeof e->section, "%s", it->section);
    e->model = override ? e->section + 6 : NULL;
    c->n_entries++; /* owned by c from here: freed with the others */

    char msg[400];
    const char *raw = it->value;
    int status = 0;
    if (raw[0] == '\0' && k->type != KEY_TEXT) {
        snprintf(msg, sizeof msg, "empty value (give at least one value)");
        status = -1;
    } else if (!(k->flags & KEY_GRID)) { /* [experiment], [record]: applied at once */
        char canon[SWEEP_TEXT_MAX];
        size_t name_len = k->type == KEY_TEXT ? 0 : dist_prefix(raw);
        if (name_len)
            status = parse_distribution(k, e, raw, name_len, msg, sizeof msg);
        else if (k->type != KEY_TEXT && strchr(raw, ',')) {
            snprintf(msg, sizeof msg, "takes a single value, not a list");
            status = -1;
        } else {
            status = sweep_key_canon(k, raw, canon, sizeof canon, msg, sizeof msg);
            if (status == 0) k->set_sweep(&c->f->pub, canon);
        }
    } else {
        size_t name_len = dist_prefix(raw);
        status = name_len ? parse_distribution(k, e, raw, name_len, msg, sizeof msg)
                          : parse_list(k, e, raw, msg, sizeof msg);
    }
    if (status) return usage_at(c, err, it->line, "[%s] %s: %s", it->section, it->key, msg);
    return 0;
}

/* "bottom_hidden, tower_hidden": the hyper-parameters `model` declares. */
static const char *hp_list(const char *model, char *out, size_t n) {
    const model_ops_t *ops = model_find(model);
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; ops && i < ops->n_hp; i++) {
        int w = snprintf(out + len, n - len, "%s%s", i ? ", " : "", ops->hp[i].name);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
    if (len == 0) snprintf(out, n, "none");
    return out;
}

/* "shared_bottom, mmoe": the models of the [model] name entry. */
static const char *model_list(const entry_t *names, char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (int v = 0; v < names->n_values; v++) {
        int w = snprintf(out + len, n - len, "%s%s", v ? ", " : "", names->values[v]);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
    return out;
}

/* Rules that involve several keys or the whole file. */
static int check_file(ctx_t *c, const item_t *items, int n_items, err_t *err) {
    sweep_t *s = &c->f->pub;
    for (int i = 0; i < c->n_keys && !c->settings; i++)
        if ((c->keys[i].flags & KEY_REQUIRED) && !find_key(c, c->keys[i].section, c->keys[i].name))
            return usage_at(
                c, err,
                strcmp(c->keys[i].section, "experiment") == 0 ? c->experiment_line : c->model_line,
                "[%s] %s is required (%s)", c->keys[i].section, c->keys[i].name, c->keys[i].help);
    const entry_t *names = find_key(c, "model", "name");
    for (int i = 0; i < n_items; i++) {
        if (!items[i].header || !is_model_section(items[i].section)) continue;
        const char *model = items[i].section + 6;
        bool listed = false;
        for (int v = 0; v < names->n_values; v++)
            listed = listed || strcmp(names->values[v], model) == 0;
        if (!listed)
            return usage_at(c, err, items[i].line,
                            "[%s]: model '%s' is not in [model] name (line %d)", items[i].section,
                            model, names->line);
    }
    /* A [model] hyper-parameter must be declared by at least one listed
     * family, a [model.<name>] one by that family. */
    for (int i = 0; i < c->n_entries; i++) {
        const entry_t *e = &c->entries[i];
        const sweep_key_t *k = &c->keys[e->key];
        if (!k->hp) continue;
        if (e->model) {
            if (!sweep_key_declared(k, e->model))
                return usage_at(c, err, e->line,
                                "[%s] %s: model %s has no such hyper-parameter "
                                "(it declares: %s)",
                                e->section, k->name, e->model,
                                hp_list(e->model, (char[400]){0}, 400));
            continue;
        }
        bool declared = false;
        for (int v = 0; v < names->n_values; v++)
            declared = declared || sweep_key_declared(k, names->values[v]);
        if (!declared && names->n_values == 1)
            return usage_at(c, err, e->line,
                            "[model] %s: model %s has no such hyper-parameter (it declares: %s)",
                            k->name, names->values[0],
                            hp_list(names->values[0], (char[400]){0}, 400));
        if (!declared)
            return usage_at(c, err, e->line,
                            "[model] %s: no listed model (%s) has this hyper-parameter", k->name,
                            model_list(names, (char[400]){0}, 400));
    }
    const entry_t *corr = find_key(c, "data", "correlation"),
                  *groups = find_key(c, "data", "groups");
    if (corr && groups && (label_of(c, corr->line) || label_of(c, groups->line)))
        return usage_at(c, err, corr->line > groups->line ? corr->line : groups->line,
                        "[data] correlation and groups exclude each other: with groups, give "
                        "within and between");
    if (corr && groups)
        return usage_at(c, err, corr->line > groups->line ? corr->line : groups->line,
                        "[data] correlation and groups exclude each other (lines %d and %d): with "
                        "groups, give within and between",
                        corr->line < groups->line ? corr->line : groups->line,
                        corr->line > groups->line ? corr->line : groups->line);
    static const char *const needs_groups[] = {"within", "between"};
    for (int i = 0; i < 2; i++) {
        const entry_t *e = find_key(c, "data", needs_groups[i]);
        if (e && !groups)
            return usage_at(c, err, e->line, "[data] %s: only applies with groups",
                            needs_groups[i]);
    }
    /* alpha_values and beta_values need alpha = list among the alphas. */
    static const char *const needs_list[] = {"alpha_values", "beta_values"};
    const entry_t *alpha = find_key(c, "data", "alpha");
    bool lists = false;
    for (int i = 0; alpha && i < alpha->n_values; i++)
        lists = lists || (alpha->values && strcmp(alpha->values[i], "list") == 0);
    for (int i = 0; i < 2; i++) {
        const entry_t *e = find_key(c, "data", needs_list[i]);
        if (e && !lists && !(alpha && alpha->dist))
            return usage_at(c, err, e->line, "[data] %s: only applies with alpha = list",
                            needs_list[i]);
    }
    const entry_t *rate = find_key(c, "data", "positive_rate");
    if (rate && !find_key(c, "data", "binary"))
        return usage_at(c, err, rate->line,
                        "[data] positive_rate: only applies with binary (the binary tasks)");
    bool any_dist = false;
    for (int i = 0; i < c->n_entries; i++)
        any_dist = any_dist || c->entries[i].dist != DIST_NONE;
    if (s->samples > 1 && !any_dist) {
        const entry_t *e = find_key(c, "experiment", "samples");
        return usage_at(c, err, e ? e->line : 0,
                        "[experiment] samples: samples = %d but no key is a distribution",
                        s->samples);
    }
    return 0;
}

/* ---- expansion ----------------------------------------------------------------- */

/* The values of one point before resolution: per key, its entry and the
 * chosen list item (or the drawn value). */
typedef struct {
    const entry_t *src[SWEEP_MAX_KEYS];
    const char *text[SWEEP_MAX_KEYS];
    char drawn[SWEEP_MAX_KEYS][VALUE_CAP];
} choice_t;

static uint64_t below64(rng_t *rng, uint64_t bound) {
    if (bound <= UINT32_MAX) return rng_below(rng, (uint32_t)bound);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v = ((uint64_t)rng_u32(rng) << 32) | rng_u32(rng);
        if (v < limit) return v % bound;
    }
}

/* Draws e's value for draw `sample` of the grid point described by g. */
static void draw(const sweep_t *s, const sweep_key_t *k, const entry_t *e, const char *g,
                 int sample, char *out, size_t n) {
    char label[8192];
    if (s->draws == SWEEP_DRAWS_PAIRED) /* the same at every grid point, for every model */
        snprintf(label, sizeof label, "paired|%s=%s", k->param, e->dist_text);
    else
        snprintf(label, sizeof label, "draw|%s|%s", g, k->param);
    rng_t rng;
    rng_seed(&rng, sweep_hash(s->seed, label, (uint64_t)sample), RNG_STREAM_SWEEP_DRAW);
    char raw[64], msg[256];
    switch (e->dist) {
    case DIST_UNIFORM: {
        double v = e->a + (e->b - e->a) * rng_uniform(&rng);
        num_to_text(v < e->a ? e->a : v > e->b ? e->b : v, raw, sizeof raw);
        break;
    }
    case DIST_LOGUNIFORM: {
        double v = exp(log(e->a) + (log(e->b) - log(e->a)) * rng_uniform(&rng));
        num_to_text(v < e->a ? e->a : v > e->b ? e->b : v, raw, sizeof raw);
        break;
    }
    case DIST_RANDINT: {
        uint64_t span = (uint64_t)e->ib - (uint64_t)e->ia + 1; /* 0: all 2^64 values */
        uint64_t off = span ? below64(&rng, span) : ((uint64_t)rng_u32(&rng) << 32) | rng_u32(&rng);
        snprintf(raw, sizeof raw, "%lld", (long long)((uint64_t)e->ia + off));
        break;
    }
    case DIST_CHOICE:
        snprintf(out, n, "%s", e->values[rng_below(&rng, (uint32_t)e->n_values)]);
        return;
    case DIST_NONE:
        assert(0);
        return;
    }
    /* In range by construction (the bounds were checked); canonicalise. */
    if (sweep_key_canon(k, raw, out, n, msg, sizeof msg)) snprintf(out, n, "%s", raw);
}

/* A point while it is resolved, in fixed buffers; add_point copies what it
 * uses into one exact-size allocation. */
typedef struct {
    char config[CONFIG_CAP];
    char data_config[DATA_CONFIG_CAP];
    size_t config_len, data_config_len;
    int n_params;
    const char *keys[SWEEP_MAX_PARAMS]; /* the key table's param names */
    char values[SWEEP_MAX_PARAMS][VALUE_CAP];
    size_t values_len; /* their lengths, NULs included */
    trial_spec_t spec;
} point_draft_t;

/* Appends "key=value" to a draft's config buffer of n bytes holding *len
 * (with ';' before all but the first). */
static int append_pair(char *buf, size_t n, size_t *len, const char *key, const char *value) {
    int w = snprintf(buf + *len, n - *len, "%s%s=%s", *len ? ";" : "", key, value);
    if (w < 0 || (size_t)w >= n - *len) return -1;
    *len += (size_t)w;
    return 0;
}

/* Adds the draft as a new point unless its config is already one.  The
 * point's params[], config, data_config and values share one allocation,
 * params[] first (freed through it). */
static int add_point(ctx_t *c, const point_draft_t *d, err_t *err) {
    sweep_full_t *f = c->f;
    sweep_t *s = &f->pub;
    if (sweep_find_point(s, d->config) >= 0) return 0; /* a duplicate: kept once */
    if (s->n_points == f->cap_points) {
        int cap = f->cap_points ? 2 * f->cap_points : 16;
        sweep_point_t *grown = mem_realloc(s->points, sizeof *grown * (size_t)cap);
        if (!grown) return err_set(err, ERR_FAIL, "%s: out of memory (%d points)", c->path, cap);
        s->points = grown;
        f->cap_points = cap;
    }
    const size_t params_size = sizeof(sweep_param_t) * (size_t)d->n_params;
    char *block = mem_alloc(params_size + d->config_len + 1 + d->data_config_len + 1 + d->values_len);
    if (!block) return err_set(err, ERR_FAIL, "%s: out of memory (point %d)", c->path, s->n_points);
    sweep_point_t *pt = &s->points[s->n_points++]; /* owned by s from here */
    pt->params = (sweep_param_t *)block;
    pt->n_params = d->n_params;
    pt->config = block + params_size;
    memcpy(pt->config, d->config, d->config_len + 1);
    pt->data_config = pt->config + d->config_len + 1;
    memcpy(pt->data_config, d->data_config, d->data_config_len + 1);
    char *value = pt->data_config + d->data_config_len + 1;
    for (int i = 0; i < d->n_params; i++) {
        const size_t n = strlen(d->values[i]) + 1;
        memcpy(value, d->values[i], n);
        pt->params[i] = (sweep_param_t){.key = d->keys[i], .value = value};
        value += n;
    }
    pt->spec = d->spec;
    if ((size_t)s->n_points * 2 >= f->n_slots && index_rebuild(f, f->n_slots ? 2 * f->n_slots : 64))
        return err_set(err, ERR_FAIL, "%s: out of memory (point index)", c->path);
    size_t i = string_hash(pt->config) & (f->n_slots - 1);
    while (f->slots[i] && f->slots[i] != s->n_points)
        i = (i + 1) & (f->n_slots - 1);
    f->slots[i] = s->n_points;
    return 0;
}

/* Resolves the point chosen by ch (model `model`, draw `sample`) and adds it. */
static int make_point(ctx_t *c, choice_t *ch, const char *model, int sample, point_draft_t *pt,
                      err_t *err) {
    const sweep_t *s = &c->f->pub;
    char g[4096] = "";
    size_t g_len = 0;
    /* A hyper-parameter the model does not declare is no part of its points,
     * nor of their draws (so the points it would tell apart are one). */
    for (int k = 0; k < c->n_keys; k++)
        if (ch->src[k] && sweep_key_declared(&c->keys[k], model) &&
            append_pair(g, sizeof g, &g_len, c->keys[k].param,
                        ch->src[k]->dist ? ch->src[k]->dist_text : ch->text[k]))
            return usage_at(c, err, 0, "a grid point's description is longer than %zu bytes",
                            sizeof g);
    for (int k = 0; k < c->n_keys; k++)
        if (ch->src[k] && ch->src[k]->dist && sweep_key_declared(&c->keys[k], model)) {
            draw(s, &c->keys[k], ch->src[k], g, sample, ch->drawn[k], sizeof ch->drawn[k]);
            ch->text[k] = ch->drawn[k];
        }

    sweep_resolve_t r;
    sweep_resolve_init(&r, model, s->seed);
    r.labels = c->labels;
    r.groups_given = ch->src[sweep_key_find("data", "groups")] != NULL;
    r.binary_given = ch->src[sweep_key_find("data", "binary")] != NULL;
    pt->config[0] = pt->data_config[0] = '\0';
    pt->config_len = pt->data_config_len = pt->values_len = 0;
    pt->n_params = 0;
    char label[1024];
    int label_len = snprintf(label, sizeof label, "model=%s", model);
    char defaults[SWEEP_MAX_KEYS][VALUE_CAP]; /* outlive the loop: r.text points into them */
    for (int k = 0; k < c->n_keys; k++) {
        const sweep_key_t *key = &c->keys[k];
        if (!(key->flags & KEY_GRID) || !sweep_key_applies(key, &r)) continue;
        const char *text = ch->text[k];
        if (!text) {
            sweep_key_default(key, &r, defaults[k], sizeof defaults[k]);
            text = defaults[k];
        }
        r.text[k] = text;
        r.line[k] = ch->src[k] ? ch->src[k]->line : 0;
        sweep_key_set(key, &r, text);
        if (key->flags & KEY_OMIT_DEFAULT) { /* at its default: no part of the identity */
            char def[VALUE_CAP];
            sweep_key_default(key, &r, def, sizeof def);
            if (strcmp(text, def) == 0) continue;
        }
        if (pt->n_params == SWEEP_MAX_PARAMS)
            return usage_at(c, err, 0, "more than %d parameters", SWEEP_MAX_PARAMS);
        pt->keys[pt->n_params] = key->param;
        int w = snprintf(pt->values[pt->n_params], VALUE_CAP, "%s", text);
        pt->values_len += (size_t)(w < VALUE_CAP ? w : VALUE_CAP - 1) + 1;
        pt->n_params++;
        if (append_pair(pt->config, sizeof pt->config, &pt->config_len, key->param, text) ||
            (strcmp(key->section, "data") == 0 &&
             append_pair(pt->data_config, sizeof pt->data_config, &pt->data_config_len, key->param,
                         text)))
            return usage_at(c, err, 0, "a point's config is longer than %zu bytes",
                            sizeof pt->config);
        const entry_t *e = ch->src[k];
        if (e && (e->dist || e->n_values > 1) && key->type != KEY_MODEL && label_len > 0 &&
            (size_t)label_len < sizeof label)
            label_len += snprintf(label + label_len, sizeof label - (size_t)label_len, ", %s=%s",
                                  key->param, text);
    }
    if (sweep_resolve_finish(&r, err)) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        if (c->settings) return usage_at(c, err, r.err_line, "%s", msg);
        return usage_at(c, err, r.err_line, "point %d (%s): %s", s->n_points, label, msg);
    }
    pt->spec = r.spec;
    return add_point(c, pt, err);
}

/* Sets ch from an odometer position over `dims` (the last dimension fastest). */
static void pick(choice_t *ch, const entry_t *const *dims, int n_dims, long long pos) {
    for (int d = n_dims - 1; d >= 0; d--) {
        const entry_t *e = dims[d];
        ch->text[e->key] = e->values[pos % e->n_values];
        pos /= e->n_values;
    }
}

static int expand(ctx_t *c, err_t *err) {
    sweep_t *s = &c->f->pub;
    const entry_t *global[SWEEP_MAX_KEYS], *over[SWEEP_MAX_KEYS];
    int n_global = 0;
    long long n_grid = 1;
    int too_many_line = 0; /* the line where the point count passed SWEEP_MAX_POINTS */
    const int name_key = sweep_key_find("model", "name");
    const entry_t *names = find_entry(c, "model", name_key);
    choice_t *base = mem_calloc(1, sizeof *base), *ch = mem_alloc(sizeof *ch);
    point_draft_t *pt = mem_alloc(sizeof *pt);
    int status = -1;
    if (!base || !ch || !pt) {
        err_set(err, ERR_FAIL, "%s: out of memory expanding the sweep", c->path);
        goto done;
    }
    for (int i = 0; i < c->n_entries; i++) {
        const entry_t *e = &c->entries[i];
        if (!(c->keys[e->key].flags & KEY_GRID) || e->model || e->key == name_key) continue;
        base->src[e->key] = e;
        base->text[e->key] = e->dist ? NULL : e->values[0];
        if (!e->dist && e->n_values > 1) {
            global[n_global++] = e;
            n_grid *= e->n_values;
            if (n_grid > SWEEP_MAX_POINTS) {
                too_many_line = e->line;
                break;
            }
        }
    }
    base->src[name_key] = names;
    /* Count first, so a huge sweep fails before any work; the error names the
     * line of the list (or samples) that crossed the limit. */
    long long total = 0;
    const entry_t *samples = find_key(c, "experiment", "samples");
    for (int m = 0; m < names->n_values && !too_many_line; m++) {
        long long per_model = n_grid * s->samples;
        if (per_model > SWEEP_MAX_POINTS) too_many_line = samples ? samples->line : 0;
        for (int i = 0; i < c->n_entries && !too_many_line; i++)
            if (c->entries[i].model && strcmp(c->entries[i].model, names->values[m]) == 0 &&
                !c->entries[i].dist) {
                per_model *= c->entries[i].n_values;
                if (per_model > SWEEP_MAX_POINTS) too_many_line = c->entries[i].line;
            }
        total += per_model;
        if (total > SWEEP_MAX_POINTS && !too_many_line) too_many_line = names->line;
    }
    if (too_many_line) {
        usage_at(c, err, too_many_line,
                 "the sweep expands to more than %d points (the product of its lists, models "
                 "and samples)",
                 SWEEP_MAX_POINTS);
        goto done;
    }
    for (long long gpos = 0; gpos < n_grid; gpos++) {
        for (int m = 0; m < names->n_values; m++) {
            const char *model = names->values[m];
            int n_over = 0;
            long long n_over_grid = 1;
            for (int i = 0; i < c->n_entries; i++) {
                const entry_t *e = &c->entries[i];
                if (e->model && strcmp(e->model, model) == 0 && !e->dist && e->n_values > 1) {
                    over[n_over++] = e;
                    n_over_grid *= e->n_values;
                }
            }
            for (long long opos = 0; opos < n_over_grid; opos++)
                for (int sample = 0; sample < s->samples; sample++) {
                    *ch = *base;
                    pick(ch, global, n_global, gpos);
                    ch->text[name_key] = model;
                    for (int i = 0; i < c->n_entries; i++) {
                        const entry_t *e = &c->entries[i];
                        if (e->model && strcmp(e->model, model) == 0) {
                            ch->src[e->key] = e;
                            ch->text[e->key] = e->dist ? NULL : e->values[0];
                        }
                    }
                    pick(ch, over, n_over, opos);
                    if (make_point(c, ch, model, sample, pt, err)) goto done;
                }
        }
    }
    if ((long long)s->n_points * s->repeats > INT_MAX) {
        const entry_t *repeats = find_key(c, "experiment", "repeats");
        usage_at(c, err, repeats ? repeats->line : 0,
                 "[experiment] repeats: %d points x %d repeats is too many trials (at most %d)",
                 s->n_points, s->repeats, INT_MAX);
        goto done;
    }
    s->n_trials = s->n_points * s->repeats;
    if (s->n_points > 0 && s->n_points < c->f->cap_points) { /* give back the doubling's slack */
        sweep_point_t *exact = mem_realloc(s->points, sizeof *exact * (size_t)s->n_points);
        if (exact) { /* else the larger array serves as well */
            s->points = exact;
            c->f->cap_points = s->n_points;
        }
    }
    status = 0;
done:
    mem_free(base);
    mem_free(ch);
    mem_free(pt);
    return status;
}

/* ---- loading ------------------------------------------------------------------------ */

/* Reads the whole file into a NUL-terminated buffer.  The read is bounded:
 * more than SWEEP_FILE_MAX bytes is refused without reading further, so a
 * character device (/dev/zero) or an endless pipe cannot exhaust memory. */
static int read_file(const char *path, char **out, size_t *out_len, err_t *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(err, ERR_FAIL, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0; /* cap: at most SWEEP_FILE_MAX + 2, room for one byte too many */
    char *buf = mem_alloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len - 1, fp);
        if (ferror(fp) || feof(fp) || len > SWEEP_FILE_MAX) break;
        if (len < cap - 1) continue; /* a short read that is neither the end nor an error */
        size_t grown_cap = cap * 2 < (size_t)SWEEP_FILE_MAX + 2 ? cap * 2 : SWEEP_FILE_MAX + 2;
        char *grown = mem_realloc(buf, grown_cap);
        if (!grown) mem_free(buf);
        buf = grown;
        cap = grown_cap;
    }
    const int saved = errno;
    const bool failed = buf && ferror(fp);
    fclose(fp);
    if (!buf) return err_set(err, ERR_FAIL, "cannot read %s: out of memory", path);
    if (failed) {
        mem_free(buf);
        return err_set(err, ERR_FAIL, "cannot read %s: %s", path, strerror(saved));
    }
    if (len > SWEEP_FILE_MAX) {
        mem_free(buf);
        return err_set(err, ERR_USAGE, "%s: larger than %d MiB; is this a sweep file?", path,
                       SWEEP_FILE_MAX >> 20);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* 1-based line of byte `pos` of text. */
static int line_of(const char *text, size_t pos) {
    int line = 1;
    for (const char *c = text; (c = memchr(c, '\n', pos - (size_t)(c - text))) != NULL; c++)
        line++;
    return line;
}

/* Removes the entry of (section, key) if there is one: a scale override
 * replaces it. */
static void drop_entry(ctx_t *c, const char *section, int key) {
    for (int i = 0; i < c->n_entries; i++)
        if (c->entries[i].key == key && strcmp(c->entries[i].section, section) == 0) {
            mem_free(c->entries[i].values);
            memmove(&c->entries[i], &c->entries[i + 1], sizeof *c->entries * (c->n_entries - i - 1));
            c->n_entries--;
            /* An entry's model points into its own section: follow the move. */
            for (int j = i; j < c->n_entries; j++)
                if (c->entries[j].model) c->entries[j].model = c->entries[j].section + 6;
            return;
        }
}

/* A [scale.<name>] item "section.key = value": checks that it names a known
 * key and, when <name> is the requested scale, applies it in place of the
 * file's own value. */
static int apply_scale_item(ctx_t *c, const item_t *it, const char *scale, err_t *err) {
    const char *dot = strrchr(it->key, '.');
    if (!dot || dot == it->key || dot[1] == '\0')
        return usage_at(c, err, it->line,
                        "[%s] %s: expected 'section.key = value' (e.g. experiment.repeats = 10)",
                        it->section, it->key);
    item_t over = *it;
    snprintf(over.section, sizeof over.section, "%.*s", (int)(dot - it->key), it->key);
    snprintf(over.key, sizeof over.key, "%s", dot + 1);
    const char *base = is_model_section(over.section) ? "model" : over.section;
    int key = sweep_key_find(base, over.key);
    if (key < 0) return unknown_key(c, &over, base, err);
    if (is_model_section(over.section) && !sweep_key_declared(&c->keys[key], over.section + 6))
        return usage_at(c, err, it->line,
                        "[%s] %s: model %s has no such hyper-parameter "
                        "(it declares: %s)",
                        over.section, over.key, over.section + 6,
                        hp_list(over.section + 6, (char[400]){0}, 400));
    if (!scale || strcmp(it->section + 6, scale) != 0) return 0;
    drop_entry(c, over.section, key);
    return add_entry(c, &over, err);
}

/* Keeps where each entry was set, for sweep_key_line. */
static int keep_key_lines(ctx_t *c, err_t *err) {
    sweep_full_t *f = c->f;
    f->key_lines = mem_calloc((size_t)c->n_entries + 1, sizeof *f->key_lines);
    if (!f->key_lines) return err_set(err, ERR_FAIL, "%s: out of memory", c->path);
    for (int i = 0; i < c->n_entries; i++) {
        const entry_t *e = &c->entries[i];
        key_line_t *kl = &f->key_lines[f->n_key_lines++];
        kl->key = e->key;
        kl->line = label_of(c, e->line) ? 0 : e->line; /* an override has no file line */
        snprintf(kl->model, sizeof kl->model, "%s", e->model ? e->model : "");
    }
    return 0;
}

/* The stored spec text of a scaled sweep: the file plus the scale, so a store
 * never mixes the trials of two scales under one experiment unnoticed. */
static int mark_scale(sweep_t *s, const char *scale, err_t *err) {
    size_t n = strlen(s->text) + strlen(scale) + 64;
    char *text = mem_alloc(n);
    if (!text) return err_set(err, ERR_FAIL, "out of memory");
    snprintf(text, n, "%s\n; mtlab run --scale %s\n", s->text, scale);
    mem_free(s->text);
    s->text = text;
    snprintf(s->scale, sizeof s->scale, "%s", scale);
    return 0;
}

const char *sweep_draws_name(int draws) {
    return draws == SWEEP_DRAWS_INDEPENDENT ? "independent" : "paired";
}

int sweep_draws_parse(const char *word) {
    if (strcmp(word, "paired") == 0) return SWEEP_DRAWS_PAIRED;
    if (strcmp(word, "independent") == 0) return SWEEP_DRAWS_INDEPENDENT;
    return -1;
}

/* The command-line overrides of a load: their items (line n_lines + 1 + i)
 * and the labels naming them in errors. */
typedef struct {
    item_t *items;
    const char **labels; /* [n_lines + n]: NULL for the file's lines */
    char (*label_text)[160];
    int n;
} overrides_t;

static void overrides_free(overrides_t *o) {
    for (int i = 0; o->items && i < o->n; i++)
        mem_free(o->items[i].value);
    mem_free(o->items);
    mem_free(o->labels);
    mem_free(o->label_text);
}

/* Moves the last entry to position `at` (an override takes the place of the
 * file's entry, so the grid keeps the file's order). */
static void move_last_entry(ctx_t *c, int at) {
    entry_t moved = c->entries[c->n_entries - 1];
    memmove(&c->entries[at + 1], &c->entries[at], sizeof *c->entries * (c->n_entries - 1 - at));
    c->entries[at] = moved;
    for (int j = at; j < c->n_entries; j++) /* a model points into its own section */
        if (c->entries[j].model) c->entries[j].model = c->entries[j].section + 6;
}

/* Parses and applies the overrides (see sweep_opts_t) after the file's
 * entries: each is checked as a line "key = value" of its section would be,
 * then replaces the entry of that key in place or is appended. */
static int apply_overrides(ctx_t *c, const sweep_opts_t *o, int n_lines, overrides_t *ov,
                           err_t *err) {
    const int n = o ? o->n_overrides : 0;
    if (n == 0) return 0;
    if (n > SWEEP_MAX_OVERRIDES)
        return err_set(err, ERR_USAGE, "%d overrides: at most %d", n, SWEEP_MAX_OVERRIDES);
    ov->items = mem_calloc((size_t)n, sizeof *ov->items);
    ov->labels = mem_calloc((size_t)n_lines + (size_t)n, sizeof *ov->labels);
    ov->label_text = mem_calloc((size_t)n, sizeof *ov->label_text);
    entry_t *grown =
        mem_realloc(c->entries, sizeof *grown * ((size_t)c->n_entries + (size_t)n + 1));
    if (grown) c->entries = grown;
    if (!ov->items || !ov->labels || !ov->label_text || !grown)
        return err_set(err, ERR_FAIL, "%s: out of memory for the overrides", c->path);
    ov->n = n;
    c->labels = ov->labels;
    for (int i = 0; i < n; i++) {
        const char *text = o->overrides[i];
        item_t *it = &ov->items[i];
        it->line = n_lines + 1 + i;
        snprintf(ov->label_text[i], sizeof ov->label_text[i], "argument '%.120s%s'", text,
                 strlen(text) > 120 ? "..." : "");
        ov->labels[it->line - 1] = ov->label_text[i];
        if (strlen(text) > 1000 || strpbrk(text, "\n\r"))
            return usage_at(c, err, it->line, "an override is one line of at most 1000 characters");
        const char *eq = strchr(text, '=');
        const char *dot = NULL;
        for (const char *p = text; eq && p < eq; p++)
            if (*p == '.') dot = p;
        if (!eq || !dot || dot == text || dot + 1 == eq)
            return usage_at(c, err, it->line,
                            "expected section.key=value[,value...] (e.g. train.lr=0.001,0.01 "
                            "or model.mmoe.experts=8)");
        trim_copy(it->section, sizeof it->section, text, (size_t)(dot - text));
        trim_copy(it->key, sizeof it->key, dot + 1, (size_t)(eq - dot - 1));
        item_t header = *it;
        header.header = true;
        if (check_section(c, &header, err)) return -1;
        if (is_scale_section(it->section))
            return usage_at(c, err, it->line,
                            "a [scale.<name>] section is applied with --scale NAME; override "
                            "the key itself (e.g. train.steps=100)");
        if (!(it->value = mem_strdup(eq + 1)))
            return err_set(err, ERR_FAIL, "%s: out of memory for the overrides", c->path);
        const bool model_section = is_model_section(it->section);
        const int key = sweep_key_find(model_section ? "model" : it->section, it->key);
        if (key < 0) return unknown_key(c, it, model_section ? "model" : it->section, err);
        if (model_section && strcmp(it->key, "name") != 0 &&
            !sweep_key_declared(&c->keys[key], it->section + 6))
            return usage_at(c, err, it->line,
                            "[%s] %s: model %s has no such hyper-parameter (it declares: %s)",
                            it->section, it->key, it->section + 6,
                            hp_list(it->section + 6, (char[400]){0}, 400));
        int at = -1;
        for (int e = 0; e < c->n_entries && at < 0; e++)
            if (c->entries[e].key == key && strcmp(c->entries[e].section, it->section) == 0) at = e;
        if (at >= 0 && label_of(c, c->entries[at].line))
            return usage_at(c, err, it->line, "[%s] %s: given twice (%s and %s)", it->section,
                            it->key, label_of(c, c->entries[at].line), label_of(c, it->line));
        if (at >= 0) {
            mem_free(c->entries[at].values);
            memmove(&c->entries[at], &c->entries[at + 1],
                    sizeof *c->entries * (size_t)(c->n_entries - at - 1));
            c->n_entries--;
            for (int j = at; j < c->n_entries; j++)
                if (c->entries[j].model) c->entries[j].model = c->entries[j].section + 6;
        }
        if (add_entry(c, it, err)) return -1;
        if (at >= 0) move_last_entry(c, at);
    }
    /* A [model.<name>] override needs <name> among the models (which an
     * override may have changed too). */
    const entry_t *names = find_key(c, "model", "name");
    for (int i = 0; i < n; i++) {
        if (!is_model_section(ov->items[i].section)) continue;
        const char *model = ov->items[i].section + 6;
        bool listed = false;
        for (int v = 0; names && v < names->n_values; v++)
            listed = listed || strcmp(names->values[v], model) == 0;
        if (!listed)
            return usage_at(c, err, ov->items[i].line, "[%s]: model '%s' is not in [model] name",
                            ov->items[i].section, model);
    }
    return 0;
}

/* The stored text's override lines and sweep_t.overrides. */
static int mark_overrides(sweep_t *s, const sweep_opts_t *o, err_t *err) {
    const int n = o ? o->n_overrides : 0;
    size_t extra = 1, lines = 1;
    for (int i = 0; i < n; i++) {
        extra += strlen(o->overrides[i]) + 40;
        lines += strlen(o->overrides[i]) + 1;
    }
    char *text = mem_alloc(strlen(s->text) + extra);
    char *list = mem_alloc(lines);
    if (!text || !list) {
        mem_free(text);
        mem_free(list);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    size_t t = (size_t)sprintf(text, "%s", s->text), l = 0;
    list[0] = '\0';
    for (int i = 0; i < n; i++) {
        /* one line each: a newline in an argument would end the comment */
        char one[1024];
        snprintf(one, sizeof one, "%s", o->overrides[i]);
        for (char *p = one; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        t += (size_t)sprintf(text + t, "%s; mtlab run override: %s\n",
                             t && text[t - 1] != '\n' ? "\n" : "", one);
        l += (size_t)sprintf(list + l, "%s\n", one);
    }
    mem_free(s->text);
    s->text = text;
    s->overrides = list;
    return 0;
}

int sweep_load(const char *path, sweep_t **out, err_t *err) {
    return sweep_load_opts(path, NULL, out, err);
}

int sweep_load_scaled(const char *path, const char *scale, sweep_t **out, err_t *err) {
    sweep_opts_t o = {.scale = scale};
    return sweep_load_opts(path, &o, out, err);
}

int sweep_load_opts(const char *path, const sweep_opts_t *opts, sweep_t **out, err_t *err) {
    const char *scale = opts ? opts->scale : NULL;
    overrides_t ov = {0};
    *out = NULL;
    sweep_full_t *f = mem_calloc(1, sizeof *f);
    if (!f) return err_set(err, ERR_FAIL, "out of memory loading %s", path);
    sweep_t *s = &f->pub;
    ctx_t c = {.path = path, .f = f};
    reader_t rd = {0};
    int status = -1;
    c.keys = sweep_keys(&c.n_keys);
    assert(c.n_keys <= SWEEP_MAX_KEYS);
    if (strlen(path) >= sizeof s->path) {
        err_set(err, ERR_USAGE, "%.200s...: path too long", path);
        goto done;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    size_t text_len = 0;
    if (read_file(path, &s->text, &text_len, err)) goto done;
    /* The line reader stops at a NUL byte: everything after it would be lost. */
    const char *nul = memchr(s->text, '\0', text_len);
    if (nul) {
        usage_at(&c, err, line_of(s->text, (size_t)(nul - s->text)), "NUL byte in the file");
        goto done;
    }
    for (int k = 0; k < c.n_keys; k++) /* sweep-level defaults */
        if (c.keys[k].set_sweep && c.keys[k].def) c.keys[k].set_sweep(s, c.keys[k].def);
    s->draws = opts && opts->draws == SWEEP_DRAWS_INDEPENDENT ? SWEEP_DRAWS_INDEPENDENT
                                                              : SWEEP_DRAWS_PAIRED;

    rd.text = s->text;
    int syntax_line = ini_parse_stream(read_line, &rd, on_pair, &rd);
    if (rd.oom || syntax_line < 0) {
        err_set(err, ERR_FAIL, "%s: out of memory while parsing", path);
        goto done;
    }
    c.entries = mem_calloc((size_t)rd.n_items + 1, sizeof *c.entries);
    if (!c.entries) {
        err_set(err, ERR_FAIL, "%s: out of memory while parsing", path);
        goto done;
    }
    /* Items in file order; a syntax error or an over-long line stops the walk. */
    int stop = syntax_line;
    if (rd.too_long_line && (!stop || rd.too_long_line < stop)) stop = rd.too_long_line;
    bool scale_found = false;
    for (int i = 0; i < rd.n_items; i++) {
        const item_t *it = &rd.items[i];
        if (stop && it->line >= stop) break;
        if (it->header || !is_scale_section(it->section)) {
            if (it->header ? check_section(&c, it, err) : add_entry(&c, it, err)) goto done;
        }
        if (it->header && scale && is_scale_section(it->section) &&
            strcmp(it->section + 6, scale) == 0)
            scale_found = true;
    }
    /* Scale overrides after everything else, so they replace the file's values. */
    for (int i = 0; i < rd.n_items && !(stop && rd.items[i].line >= stop); i++)
        if (!rd.items[i].header && is_scale_section(rd.items[i].section) &&
            apply_scale_item(&c, &rd.items[i], scale, err))
            goto done;
    if (scale && !stop && !scale_found) {
        err_set(err, ERR_USAGE, "%s has no [scale.%s] section", path, scale);
        goto done;
    }
    if (stop == rd.too_long_line && stop) {
        usage_at(&c, err, stop, "line too long (at most %d characters without comments)",
                 rd.max_line);
        goto done;
    }
    if (stop) {
        usage_at(&c, err, stop, "expected 'key = value' or '[section]'");
        goto done;
    }
    if (apply_overrides(&c, opts, rd.line, &ov, err)) goto done;
    s->draws_given = find_key(&c, "experiment", "draws") != NULL;
    for (int i = 0; i < c.n_entries; i++)
        s->random = s->random || c.entries[i].dist != DIST_NONE;
    if (check_file(&c, rd.items, rd.n_items, err) || keep_key_lines(&c, err) || expand(&c, err))
        goto done;
    if (scale && mark_scale(s, scale, err)) goto done;
    if (mark_overrides(s, opts, err)) goto done;
    status = 0;
done:
    for (int i = 0; i < c.n_entries; i++)
        mem_free(c.entries[i].values);
    mem_free(c.entries);
    reader_free(&rd);
    overrides_free(&ov);
    if (status) {
        sweep_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- settings: one point from "section.key=value" ------------------------------ */

int sweep_from_settings(const char *const *settings, const char *const *labels, int n,
                        uint64_t seed, sweep_t **out, err_t *err) {
    *out = NULL;
    sweep_full_t *f = mem_calloc(1, sizeof *f);
    /* labels of the settings, then of the default model name */
    const char **all_labels = mem_calloc((size_t)n + 1, sizeof *all_labels);
    item_t *items = mem_calloc((size_t)n + 1, sizeof *items);
    ctx_t c = {.path = "arguments", .f = f, .labels = all_labels, .settings = true};
    int status = -1, n_items = 0;
    if (!f || !all_labels || !items) {
        err_set(err, ERR_FAIL, "out of memory reading the settings");
        goto done;
    }
    c.keys = sweep_keys(&c.n_keys);
    c.entries = mem_calloc((size_t)n + 1, sizeof *c.entries);
    if (!c.entries) {
        err_set(err, ERR_FAIL, "out of memory reading the settings");
        goto done;
    }
    sweep_t *s = &f->pub;
    for (int k = 0; k < c.n_keys; k++) /* sweep-level defaults */
        if (c.keys[k].set_sweep && c.keys[k].def) c.keys[k].set_sweep(s, c.keys[k].def);
    s->seed = seed;
    snprintf(s->name, sizeof s->name, "settings");
    bool named = false;
    for (int i = 0; i <= n; i++) {
        item_t *it = &items[n_items];
        it->line = n_items + 1;
        const char *setting = i < n ? settings[i] : "model.name=mmoe";
        if (i == n && named) break;
        all_labels[n_items] = i < n ? labels[i] : "model.name (default: mmoe)";
        n_items++;
        const char *eq = strchr(setting, '=');
        const char *dot = eq ? memchr(setting, '.', (size_t)(eq - setting)) : NULL;
        if (!eq || !dot || dot == setting || dot + 1 == eq) {
            usage_at(&c, err, it->line, "expected section.key=value (e.g. model.experts=4)");
            goto done;
        }
        /* The key is what follows the last dot before '=': model.mmoe.experts
         * would be a [model.mmoe] line, which one trial does not need. */
        const char *last_dot = dot;
        for (const char *p = dot + 1; p < eq; p++)
            if (*p == '.') last_dot = p;
        if (last_dot != dot) {
            usage_at(&c, err, it->line,
                     "expected section.key=value (one trial has one model: give "
                     "model.KEY, not model.NAME.KEY)");
            goto done;
        }
        trim_copy(it->section, sizeof it->section, setting, (size_t)(dot - setting));
        trim_copy(it->key, sizeof it->key, dot + 1, (size_t)(eq - dot - 1));
        it->header = true;
        if (check_section(&c, it, err)) goto done;
        if (is_scale_section(it->section) || strcmp(it->section, "experiment") == 0 ||
            strcmp(it->section, "record") == 0) {
            usage_at(&c, err, it->line,
                     "[%s] keys describe a sweep, not one trial (give data.*, train.* or model.*)",
                     it->section);
            goto done;
        }
        it->header = false;
        if (!(it->value = mem_strdup(eq + 1))) {
            err_set(err, ERR_FAIL, "out of memory reading the settings");
            goto done;
        }
        if (add_entry(&c, it, err)) goto done;
        const entry_t *e = &c.entries[c.n_entries - 1];
        if (e->dist != DIST_NONE || e->n_values != 1) {
            usage_at(&c, err, it->line, "[%s] %s: takes a single value here (one trial)",
                     it->section, it->key);
            goto done;
        }
        named = named || e->key == sweep_key_find("model", "name");
    }
    if (check_file(&c, items, n_items, err) || keep_key_lines(&c, err) || expand(&c, err))
        goto done;
    assert(s->n_points == 1);
    status = 0;
done:
    for (int i = 0; i < c.n_entries; i++)
        mem_free(c.entries[i].values);
    mem_free(c.entries);
    for (int i = 0; items && i < n_items; i++)
        mem_free(items[i].value);
    mem_free(items);
    mem_free(all_labels);
    if (status) {
        if (f) sweep_free(&f->pub);
        return -1;
    }
    /* the labels are gone: the sweep keeps no pointer to them */
    *out = &f->pub;
    return 0;
}
