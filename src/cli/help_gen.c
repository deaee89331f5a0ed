/* help_gen.c -- the man page and bash completion from the CLI's tables
 * (contract: help_gen.h).
 *
 * A command's options live in a local opt_t table inside its function, so
 * the only way to read them without a second copy is to run the command:
 * cli_options() sees HELP_DESCRIBE and prints help_describe's lines.  The
 * generator points fd 1 at a temporary file for the call, reads the lines
 * back and renders them: troff for man(1), or case arms of a bash function
 * that knows every command's options, which of them take a value, and what
 * a value or positional argument is (a file, a directory, a sweep file, an
 * experiment of the store). */
#include "cli/help_gen.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/opts.h"
#include "core/mem.h"

/* ---- describing ------------------------------------------------------------ */

/* Writes s with \ newline and tab escaped (one field of a line). */
static void put_field(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\t')
            fputs("\\t", f);
        else
            fputc(*s, f);
    }
}

/* The default as `--help` shows it (opts_usage), or "" when the help text
 * states its own. */
static void default_text(const opt_t *o, char *def, size_t size) {
    def[0] = '\0';
    if (strstr(o->help, "default")) return;
    switch (o->type) {
    case OPT_INT:
        snprintf(def, size, "%d", *(const int *)o->target);
        break;
    case OPT_U64:
        snprintf(def, size, "%" PRIu64, *(const uint64_t *)o->target);
        break;
    case OPT_DOUBLE:
        snprintf(def, size, "%g", *(const double *)o->target);
        break;
    case OPT_STRING: {
        const char *s = *(const char *const *)o->target;
        snprintf(def, size, "%s", s ? s : "none");
        break;
    }
    case OPT_FLAG:
        snprintf(def, size, "off");
        break;
    }
}

void help_describe(FILE *f, const char *usage, const char *description, const opt_t *opts,
                   int n_opts) {
    fputs("usage\t", f);
    put_field(f, usage);
    fputs("\nabout\t", f);
    put_field(f, description);
    fputc('\n', f);
    for (int i = 0; i < n_opts; i++) {
        char def[128];
        default_text(&opts[i], def, sizeof def);
        fputs("option\t", f);
        put_field(f, opts[i].name);
        fputs(opts[i].type == OPT_FLAG ? "\tflag\t" : "\tvalue\t", f);
        put_field(f, opts[i].type == OPT_FLAG ? "" : opts[i].meta ? opts[i].meta : "X");
        fputc('\t', f);
        put_field(f, opts[i].help);
        fputc('\t', f);
        put_field(f, def);
        fputc('\n', f);
    }
}

/* ---- reading a description back ---------------------------------------------- */

/* Unescapes field [s, end) into a new string. */
static char *take_field(const char *s, const char *end) {
    char *out = mem_alloc((size_t)(end - s) + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (; s < end; s++) {
        if (*s == '\\' && s + 1 < end) {
            s++;
            out[k++] = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
        } else {
            out[k++] = *s;
        }
    }
    out[k] = '\0';
    return out;
}

/* Splits one line into at most max fields (new strings); returns the count
 * or -1 when out of memory. */
static int split_line(const char *line, const char *end, char **fields, int max) {
    int n = 0;
    while (n < max) {
        const char *tab = memchr(line, '\t', (size_t)(end - line));
        const char *stop = tab ? tab : end;
        if (!(fields[n] = take_field(line, stop))) {
            for (int i = 0; i < n; i++)
                mem_free(fields[i]);
            return -1;
        }
        n++;
        if (!tab) break;
        line = tab + 1;
    }
    return n;
}

void help_described_free(help_described_t *d) {
    mem_free(d->usage);
    mem_free(d->about);
    for (int i = 0; i < d->n_opts; i++) {
        mem_free(d->opts[i].name);
        mem_free(d->opts[i].meta);
        mem_free(d->opts[i].help);
        mem_free(d->opts[i].def);
    }
    memset(d, 0, sizeof *d);
}

static int parse_described(const char *text, const char *cmd, help_described_t *d, err_t *err) {
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        const char *end = nl ? nl : line + strlen(line);
        char *fields[6] = {0};
        int n = split_line(line, end, fields, 6);
        if (n < 0) return err_set(err, ERR_FAIL, "out of memory");
        bool used = false;
        if (n == 2 && strcmp(fields[0], "usage") == 0 && !d->usage) {
            d->usage = fields[1];
            used = true;
        } else if (n == 2 && strcmp(fields[0], "about") == 0 && !d->about) {
            d->about = fields[1];
            used = true;
        } else if (n == 6 && strcmp(fields[0], "option") == 0 && d->n_opts < HELP_MAX_OPTS) {
            d->opts[d->n_opts].name = fields[1];
            d->opts[d->n_opts].flag = strcmp(fields[2], "flag") == 0;
            d->opts[d->n_opts].meta = fields[3];
            d->opts[d->n_opts].help = fields[4];
            d->opts[d->n_opts].def = fields[5];
            d->n_opts++;
            mem_free(fields[0]);
            mem_free(fields[2]);
            line = nl ? nl + 1 : end;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (!(used && i == 1)) mem_free(fields[i]);
        if (!used)
            return err_set(err, ERR_FAIL, "mtlab %s %s printed an unexpected line", cmd,
                           HELP_DESCRIBE);
        line = nl ? nl + 1 : end;
    }
    if (!d->usage || !d->about)
        return err_set(err, ERR_FAIL, "mtlab %s %s printed no usage", cmd, HELP_DESCRIBE);
    return 0;
}

int help_read_described(const cli_command_t *cmd, help_described_t *d, err_t *err) {
    memset(d, 0, sizeof *d);
    FILE *tmp = tmpfile();
    if (!tmp) return err_set(err, ERR_FAIL, "cannot make a temporary file");
    fflush(stdout);
    const int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
        if (saved >= 0) close(saved);
        fclose(tmp);
        return err_set(err, ERR_FAIL, "cannot redirect the standard output");
    }
    char *argv[] = {(char *)cmd->name, HELP_DESCRIBE, NULL};
    const int status = cmd->run(2, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    if (status != 0) {
        fclose(tmp);
        return err_set(err, ERR_FAIL, "mtlab %s %s exited %d", cmd->name, HELP_DESCRIBE, status);
    }
    long size = ftell(tmp);
    char *text = size >= 0 ? mem_alloc((size_t)size + 1) : NULL;
    if (!text) {
        fclose(tmp);
        return err_set(err, ERR_FAIL, "out of memory");
    }
    rewind(tmp);
    size_t got = fread(text, 1, (size_t)size, tmp);
    text[got] = '\0';
    fclose(tmp);
    int rc = parse_described(text, cmd->name, d, err);
    mem_free(text);
    if (rc) help_described_free(d);
    return rc;
}

/* ---- the man page ------------------------------------------------------------ */

/* Writes text as troff: backslashes as \e, '-' as \- (so options copy and
 * search as ASCII hyphens), a line starting with . or ' guarded by \&. */
static void put_roff(FILE *f, const char *s) {
    bool line_start = true;
    for (; *s; s++) {
        if (line_start && (*s == '.' || *s == '\'')) fputs("\\&", f);
        line_start = *s == '\n';
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
    }
}

static void man_command(FILE *f, const cli_command_t *c, const help_described_t *d) {
    fputs(".SS \"", f);
    put_roff(f, c->name);
    fputs("\"\n", f);
    put_roff(f, c->summary);
    fputs(".\n.PP\n.nf\n", f);
    put_roff(f, d->usage);
    fputs("\n.fi\n.PP\n.nf\n", f);
    put_roff(f, d->about);
    fputs("\n.fi\n", f);
    for (int i = 0; i < d->n_opts; i++) {
        fputs(".TP\n\\fB\\-\\-", f);
        put_roff(f, d->opts[i].name);
        fputs("\\fR", f);
        if (!d->opts[i].flag) {
            fputs(" \\fI", f);
            put_roff(f, d->opts[i].meta);
            fputs("\\fR", f);
        }
        fputc('\n', f);
        put_roff(f, d->opts[i].help);
        if (d->opts[i].def[0]) {
            fputs(" (default: ", f);
            put_roff(f, d->opts[i].def);
            fputc(')', f);
        }
        fputc('\n', f);
    }
    fputs(".TP\n\\fB\\-\\-help\\fR\nshow this help\n", f);
}

int help_man(FILE *f, const cli_command_t *cmds, int n_cmds, const char *version, err_t *err) {
    fputs(".\\\" mtlab.1 -- generated by `mtlab help --man` from the option tables; do not "
          "edit\n.TH MTLAB 1 \"\" \"mtlab ",
          f);
    put_roff(f, version);
    fputs("\" \"User Commands\"\n"
          ".SH NAME\n"
          "mtlab \\- a research workbench for multi\\-task learning\n"
          ".SH SYNOPSIS\n"
          ".B mtlab\n.I COMMAND\n[\\fIOPTIONS\\fR]\n.br\n"
          ".B mtlab help\n[\\fICOMMAND\\fR | \\fB\\-\\-man\\fR | \\fB\\-\\-completion\\fR]\n.br\n"
          ".B mtlab \\-\\-version\n"
          ".SH DESCRIPTION\n"
          "mtlab trains multi\\-task models (Shared\\-Bottom, OMoE, MMoE and others) on\n"
          "synthetic or CSV data, runs sweeps described by INI files into one SQLite\n"
          "store, and redraws figures, tables and reports from that store.  Every\n"
          "command takes \\fB\\-\\-help\\fR; \\fBmtlab keys\\fR lists the keys of a sweep file.\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n"
          ".SH COMMANDS\n",
          f);
    for (int i = 0; i < n_cmds; i++) {
        fputs(".TP\n.B ", f);
        put_roff(f, cmds[i].name);
        fputc('\n', f);
        put_roff(f, cmds[i].summary);
        fputc('\n', f);
    }
    fputs(".SH OPTIONS\n", f);
    for (int i = 0; i < n_cmds; i++) {
        help_described_t d;
        if (help_read_described(&cmds[i], &d, err)) return -1;
        man_command(f, &cmds[i], &d);
        help_described_free(&d);
    }
    fputs(".SH ENVIRONMENT\n"
          ".TP\n.B MTLAB_DB\n"
          "the store every command uses when \\fB\\-\\-db\\fR is not given\n"
          ".TP\n.B MTLAB_PROGRESS_EVERY\n"
          "seconds between the plain progress lines of a sweep on a pipe or log (default 30)\n"
          ".TP\n.B MTLAB_BLAS_CORE\n"
          "the OpenBLAS core to use (re\\-executes mtlab with OPENBLAS_CORETYPE)\n"
          ".SH FILES\n"
          ".TP\n.I PREFIX/share/mtlab/experiments\n"
          "the sweep files of the papers' studies (\\fBmtlab reproduce\\fR reads\n"
          "experiments/mmoe/*.ini there when the current directory has none)\n"
          ".SH \"SEE ALSO\"\n"
          ".BR gnuplot (1),\n.BR sqlite3 (1)\n",
          f);
    return ferror(f) ? err_set(err, ERR_FAIL, "cannot write the man page") : 0;
}

/* ---- bash completion ---------------------------------------------------------- */

/* What a value or positional argument is, from its placeholder. */
typedef enum { ARG_NONE, ARG_FILE, ARG_DIR, ARG_INI, ARG_EXPERIMENT } arg_kind_t;

static arg_kind_t meta_kind(const char *meta, size_t len) {
    if (len >= 4 && strncmp(meta + len - 4, ".ini", 4) == 0) return ARG_INI;
    if ((len == 3 && strncmp(meta, "EXP", 3) == 0) || (len == 10 && strncmp(meta, "EXPERIMENT", 10) == 0))
        return ARG_EXPERIMENT;
    if (len == 3 && strncmp(meta, "DIR", 3) == 0) return ARG_DIR;
    if ((len >= 4 && strncmp(meta, "FILE", 4) == 0) || (len >= 3 && strncmp(meta + len - 3, ".db", 3) == 0))
        return ARG_FILE;
    return ARG_NONE;
}

/* The first positional placeholder of a usage line: "mtlab run SWEEP.ini
 * [OPTIONS]" -> SWEEP.ini; "(TRIAL..." -> TRIAL. */
static arg_kind_t positional_kind(const char *usage) {
    const char *p = usage;
    for (int word = 0; word < 2 && p; word++) { /* skip "mtlab CMD" */
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p) return ARG_NONE;
    while (*p == '(' || *p == '[')
        p++;
    size_t len = strcspn(p, " .|)]");
    if (p[len] == '.' && strncmp(p + len, ".ini", 4) == 0) len += 4;
    if (p[len] == '.' && strncmp(p + len, ".db", 3) == 0) len += 3;
    return meta_kind(p, len);
}

static const char *kind_action(arg_kind_t k) {
    switch (k) {
    case ARG_FILE:
        return "_mtlab_files";
    case ARG_DIR:
        return "_mtlab_dirs";
    case ARG_INI:
        return "_mtlab_ini";
    case ARG_EXPERIMENT:
        return "_mtlab_experiments";
    default:
        return "_mtlab_none";
    }
}

static const char completion_head[] =
    "# bash completion for mtlab -- generated by `mtlab help --completion` from the\n"
    "# option tables of mtlab itself; do not edit.  Install it as\n"
    "# PREFIX/share/bash-completion/completions/mtlab, or source it.\n"
    "_mtlab_files() { COMPREPLY=($(compgen -f -- \"$cur\")); compopt -o filenames 2>/dev/null; }\n"
    "_mtlab_dirs() { COMPREPLY=($(compgen -d -- \"$cur\")); compopt -o filenames 2>/dev/null; }\n"
    "_mtlab_ini() {\n"
    "    COMPREPLY=($(compgen -f -X '!*.ini' -- \"$cur\") $(compgen -d -- \"$cur\"))\n"
    "    compopt -o filenames 2>/dev/null\n"
    "}\n"
    "_mtlab_none() { COMPREPLY=(); }\n"
    "# The experiments of the store named by --db on the line, $MTLAB_DB or\n"
    "# results.db (nothing when it does not exist).\n"
    "_mtlab_experiments() {\n"
    "    local db=${MTLAB_DB:-results.db} i names=\n"
    "    for ((i = 2; i < COMP_CWORD; i++)); do\n"
    "        case ${COMP_WORDS[i]} in\n"
    "        --db) db=${COMP_WORDS[i + 1]} ;;\n"
    "        --db=*) db=${COMP_WORDS[i]#--db=} ;;\n"
    "        esac\n"
    "    done\n"
    "    [[ -f $db ]] && names=$(\"${COMP_WORDS[0]}\" sql --db \"$db\" --csv \\\n"
    "        'SELECT name FROM experiment ORDER BY name' 2>/dev/null | tail -n +2)\n"
    "    COMPREPLY=($(compgen -W \"$names\" -- \"$cur\"))\n"
    "}\n"
    "_mtlab() {\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "    local commands options positional\n";

int help_completion(FILE *f, const cli_command_t *cmds, int n_cmds, err_t *err) {
    fputs(completion_head, f);
    fputs("    commands=\"", f);
    for (int i = 0; i < n_cmds; i++)
        fprintf(f, "%s ", cmds[i].name);
    fputs("help\"\n"
          "    if ((COMP_CWORD == 1)); then\n"
          "        COMPREPLY=($(compgen -W \"$commands --version --help\" -- \"$cur\"))\n"
          "        return 0\n"
          "    fi\n"
          "    case ${COMP_WORDS[1]} in\n"
          "    help)\n"
          "        COMPREPLY=($(compgen -W \"$commands --man --completion\" -- \"$cur\"))\n"
          "        return 0 ;;\n",
          f);
    for (int i = 0; i < n_cmds; i++) {
        help_described_t d;
        if (help_read_described(&cmds[i], &d, err)) return -1;
        fprintf(f, "    %s)\n        options=\"", cmds[i].name);
        for (int k = 0; k < d.n_opts; k++)
            fprintf(f, "--%s ", d.opts[k].name);
        fputs("--help\"\n        positional=", f);
        fputs(kind_action(positional_kind(d.usage)), f);
        /* the options that take a value: what the value is */
        bool has_value = false;
        for (int k = 0; k < d.n_opts; k++)
            has_value |= !d.opts[k].flag;
        if (has_value) {
            fputs("\n        case $prev in\n", f);
            for (int k = 0; k < d.n_opts; k++)
                if (!d.opts[k].flag)
                    fprintf(f, "        --%s) %s; return 0 ;;\n", d.opts[k].name,
                            kind_action(meta_kind(d.opts[k].meta, strlen(d.opts[k].meta))));
            fputs("        esac", f);
        }
        fputs(" ;;\n", f);
        help_described_free(&d);
    }
    fputs("    *) return 0 ;;\n"
          "    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
          "        return 0\n"
          "    fi\n"
          "    $positional\n"
          "}\n"
          "complete -F _mtlab mtlab\n",
          f);
    return ferror(f) ? err_set(err, ERR_FAIL, "cannot write the completion script") : 0;
}
