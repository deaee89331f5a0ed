/* test_install.c -- mtlab as a user installs and meets it: `make install`
 * into a temporary DESTDIR/PREFIX and the installed binary run from another
 * directory (its SQL is compiled in; an installed `reproduce` finds the
 * installed sweep files), `make uninstall`; the man page and the bash
 * completion, both generated from the CLI's own tables, checked against
 * what `mtlab help` and each `mtlab CMD --help` print (every command and
 * option documented and completed), rendered by groff and sourced by bash;
 * and `mtlab report` opened in a real headless browser (chromium, installed
 * by `make deps`), its DOM checked against the store. */
#define _GNU_SOURCE /* mkdtemp */
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* ---- helpers ----------------------------------------------------------------- */

/* Runs argv (argv[0] looked up on $PATH unless it holds a '/') in directory
 * cwd (NULL: here) with stdin from /dev/null; captures stdout and stderr
 * (caller frees; either pointer may be NULL to drop it).  Returns the exit
 * status, 128 + signal when killed, 127 when it cannot be run. */
static int run_in(const char *cwd, const char *const *argv, char **out, char **err) {
    char out_path[] = "/tmp/mtlab-install-out-XXXXXX", err_path[] = "/tmp/mtlab-install-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    ck_assert(out_fd >= 0 && err_fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        if (cwd && chdir(cwd) != 0) _exit(126);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    close(out_fd);
    close(err_fd);
    if (out) *out = test_read_file(out_path);
    if (err) *err = test_read_file(err_path);
    unlink(out_path);
    unlink(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The program `name` on $PATH, written to buf; false when absent. */
static bool on_path(const char *name, char *buf, size_t size) {
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        snprintf(buf, size, "%.*s/%s", (int)len, path, name);
        if (len > 0 && access(buf, X_OK) == 0) return true;
        path += len + (path[len] == ':');
    }
    return false;
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The checkout holding $MTLAB_BIN (.../ROOT/build[/san]/mtlab), and the
 * binary's path relative to it ("build/mtlab"), or an assertion. */
static void checkout_of_bin(char *root, size_t size, const char **rel_bin) {
    const char *bin = getenv("MTLAB_BIN");
    ck_assert_msg(bin != NULL, "MTLAB_BIN is not set (run the tests through `make check`)");
    const char *b = strstr(bin, "/build/");
    ck_assert_msg(b != NULL, "MTLAB_BIN=%s is not under a checkout's build/", bin);
    snprintf(root, size, "%.*s", (int)(b - bin), bin);
    *rel_bin = b + 1;
    char makefile[4200];
    snprintf(makefile, sizeof makefile, "%s/Makefile", root);
    ck_assert_msg(is_file(makefile), "no Makefile in %s (the checkout of MTLAB_BIN)", root);
}

/* A tiny sweep, run into dir/NAME.db; returns the store's path. */
static char *tiny_store(const char *dir, const char *name) {
    char ini_text[600];
    snprintf(ini_text, sizeof ini_text,
             "[experiment]\nname = %s\nrepeats = 2\nseed = 7\n"
             "description = a <b>bold</b> & \"quoted\" sweep\n"
             "[data]\ncorrelation = 0.5\ndim = 6\ntrain = 64\nvalidation = 32\ntest = 32\n"
             "[train]\nlr = 0.01\nbatch = 16\nsteps = 10\neval_every = 5\n"
             "[model]\nname = shared_bottom, mmoe\nexperts = 2\nexpert_hidden = 3\n"
             "tower_hidden = 3\n",
             name);
    char file[64];
    snprintf(file, sizeof file, "%s.ini", name);
    char *ini = test_write_file(dir, file, ini_text);
    snprintf(file, sizeof file, "%s.db", name);
    char *db = test_join(dir, file);
    const char *args[] = {"run", ini, "--db", db, "--quiet", NULL};
    free(test_mtlab_ok(0, NULL, args));
    free(ini);
    return db;
}

/* The command names `mtlab help` lists (after "commands:"), NULL-ended. */
static int help_commands(char **text, const char **names, int max) {
    const char *args[] = {"help", NULL};
    *text = test_mtlab_ok(0, NULL, args);
    char *p = strstr(*text, "commands:\n");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    for (char *line = strtok(p + 10, "\n"); line && n < max - 1; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        char *sp = strchr(line, ' ');
        if (sp) *sp = '\0';
        if (*line) names[n++] = line;
    }
    names[n] = NULL;
    return n;
}

/* The option names (without --) that `mtlab CMD --help` lists, NULL-ended. */
static int help_options(const char *cmd, char **text, const char **names, int max) {
    const char *args[] = {cmd, "--help", NULL};
    *text = test_mtlab_ok(0, NULL, args);
    int n = 0;
    for (char *line = strtok(*text, "\n"); line && n < max - 1; line = strtok(NULL, "\n")) {
        if (strncmp(line, "  --", 4) != 0) continue;
        char *name = line + 4;
        name[strcspn(name, " ")] = '\0';
        names[n++] = name;
    }
    names[n] = NULL;
    return n;
}

/* What `mtlab help` and each `mtlab CMD --help` list, read once for the
 * test case (an unchecked fixture: the forked tests inherit it). */
static struct {
    char *help_text;
    const char *cmds[64];
    int n_cmds;
    char *opts_text[64];
    const char *opts[64][80];
    int n_opts[64];
} cli;

static void cli_tables_load(void) {
    cli.n_cmds = help_commands(&cli.help_text, cli.cmds, 64);
    for (int i = 0; i < cli.n_cmds; i++)
        cli.n_opts[i] = help_options(cli.cmds[i], &cli.opts_text[i], cli.opts[i], 80);
}

static void cli_tables_free(void) {
    for (int i = 0; i < cli.n_cmds; i++)
        free(cli.opts_text[i]);
    free(cli.help_text);
    memset(&cli, 0, sizeof cli);
}

/* ---- the man page ---------------------------------------------------------------- */

/* Every command `mtlab help` lists has a section; every option its --help
 * lists appears there as \-\-NAME; groff renders the page without a
 * warning; man(1) shows it. */
START_TEST(test_man_page) {
    char *dir = test_tmpdir();
    const char *args[] = {"help", "--man", NULL};
    char *man = test_mtlab_ok(0, NULL, args);
    char *path = test_write_file(dir, "mtlab.1", man);
    ck_assert_msg(strncmp(man, ".\\\" mtlab.1", 11) == 0, "%.80s", man);
    ck_assert_ptr_nonnull(strstr(man, "\n.TH MTLAB 1 "));
    ck_assert_ptr_nonnull(strstr(man, "\n.SH NAME\n"));
    ck_assert_ptr_nonnull(strstr(man, "\n.SH SYNOPSIS\n"));
    ck_assert_ptr_nonnull(strstr(man, "\n.SH OPTIONS\n"));
    const int n_cmds = cli.n_cmds;
    const char *const *cmds = cli.cmds;
    ck_assert_int_ge(n_cmds, 20);
    for (int i = 0; i < n_cmds; i++) {
        char head[128];
        snprintf(head, sizeof head, "\n.SS \"%s\"\n", cmds[i]);
        char *section = strstr(man, head);
        ck_assert_msg(section != NULL, "the man page has no section for %s", cmds[i]);
        char *end = strstr(section + 1, "\n.SS ");
        if (!end) end = strstr(section, "\n.SH ");
        const int n_opts = cli.n_opts[i];
        const char *const *opts = cli.opts[i];
        for (int k = 0; k < n_opts; k++) {
            char want[160], roff_name[120];
            size_t m = 0;
            for (const char *c = opts[k]; *c && m + 3 < sizeof roff_name; c++) {
                if (*c == '-') roff_name[m++] = '\\';
                roff_name[m++] = *c;
            }
            roff_name[m] = '\0';
            snprintf(want, sizeof want, "\\fB\\-\\-%s\\fR", roff_name);
            char *at = strstr(section, want);
            ck_assert_msg(at && at < end, "man page: %s lacks --%s", cmds[i], opts[k]);
        }
    }

    char groff[512];
    if (on_path("groff", groff, sizeof groff)) {
        const char *render[] = {groff, "-man", "-Tutf8", "-ww", "-z", path, NULL};
        char *err;
        int rc = run_in(NULL, render, NULL, &err);
        ck_assert_msg(rc == 0 && err[0] == '\0', "groff -man -ww on mtlab.1: exit %d: %s", rc, err);
        free(err);
    } else {
        fprintf(stderr, "test_install: groff is not installed: mtlab.1 checked for structure only\n");
    }
    char man_prog[512];
    if (on_path("man", man_prog, sizeof man_prog)) {
        const char *show[] = {man_prog, "-l", path, NULL};
        char *out;
        setenv("MANWIDTH", "100", 1);
        setenv("MANPAGER", "cat", 1);
        int rc = run_in(NULL, show, &out, NULL);
        ck_assert_msg(rc == 0 && strstr(out, "MTLAB(1)") && strstr(out, "--band-lo"),
                      "man -l mtlab.1: exit %d: %.400s", rc, out);
        free(out);
    }
    free(path);
    free(man);
    free(dir);
}
END_TEST

/* ---- bash completion ------------------------------------------------------------- */

/* The script is valid bash, registers _mtlab for mtlab and completes a
 * command prefix, an option prefix of every command, the experiments of
 * the store named by --db, and sweep files. */
START_TEST(test_completion) {
    char bash[512];
    ck_assert_msg(on_path("bash", bash, sizeof bash), "bash is not installed");
    char *dir = test_tmpdir();
    char *db = tiny_store(dir, "tiny-completion");
    free(test_write_file(dir, "b.ini", "[experiment]\n"));
    free(test_write_file(dir, "c.txt", "x\n"));
    const char *args[] = {"help", "--completion", NULL};
    char *script = test_mtlab_ok(0, NULL, args);
    char *path = test_write_file(dir, "mtlab.bash", script);
    const char *bin = getenv("MTLAB_BIN");
    /* c WORDS...: complete the last word of WORDS, print the candidates sorted
     * (run: the .ini files and directories, not c.txt or the store) */
    char probe[8192];
    snprintf(probe, sizeof probe,
             "source '%s' || exit 3\n"
             "complete -p mtlab || exit 4\n"
             "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _mtlab;\n"
             "      echo \"[$(printf '%%s\\n' \"${COMPREPLY[@]}\" | sort | paste -sd' ')]\"; }\n"
             "c '%s' tri\n"
             "c '%s' plot --band-\n"
             "c '%s' trials --db '%s' tiny-c\n"
             "c '%s' report --db '%s' zz\n"
             "c '%s' run ''\n"
             "c '%s' help --m\n",
             path, bin, bin, bin, db, bin, db, bin, bin);
    const char *run_bash[] = {bash, "--norc", "--noprofile", "-c", probe, NULL};
    char *out, *err;
    int rc = run_in(dir, run_bash, &out, &err);
    ck_assert_msg(rc == 0, "bash: exit %d: %s\n%s", rc, out, err);
    const char *want = "complete -F _mtlab mtlab\n"
                       "[trials]\n"
                       "[--band-hi --band-lo]\n"
                       "[tiny-completion]\n"
                       "[]\n"
                       "[b.ini tiny-completion.ini]\n"
                       "[--man]\n";
    ck_assert_msg(strcmp(out, want) == 0, "completion printed:\n%s\nwanted:\n%s\n(stderr: %s)",
                  out, want, err);
    free(out);
    free(err);

    /* every option of every command completes from its "--" prefix (one
     * bash: a line "CMD: candidates" per command) */
    const int n_cmds = cli.n_cmds;
    const char *const *cmds = cli.cmds;
    size_t len = (size_t)snprintf(probe, sizeof probe, "source '%s'\nfor cmd in", path);
    for (int i = 0; i < n_cmds; i++)
        len += (size_t)snprintf(probe + len, sizeof probe - len, " %s", cmds[i]);
    snprintf(probe + len, sizeof probe - len,
             "; do\n  COMP_WORDS=(mtlab $cmd --); COMP_CWORD=2; COMPREPLY=(); _mtlab\n"
             "  echo \"$cmd: ${COMPREPLY[*]} \"\ndone\n");
    const char *all[] = {bash, "--norc", "--noprofile", "-c", probe, NULL};
    ck_assert_int_eq(run_in(dir, all, &out, NULL), 0);
    for (int i = 0; i < n_cmds; i++) {
        char head[80];
        snprintf(head, sizeof head, "%s: ", cmds[i]);
        const char *line = out;
        while (line && strncmp(line, head, strlen(head)) != 0)
            line = (line = strchr(line, '\n')) ? line + 1 : NULL;
        ck_assert_msg(line != NULL, "no completion line for %s: %s", cmds[i], out);
        char *words = strndup(line + strlen(head) - 1, strcspn(line, "\n") - strlen(head) + 1);
        const int n_opts = cli.n_opts[i];
        const char *const *opts = cli.opts[i];
        for (int k = 0; k < n_opts; k++) {
            char word[128];
            snprintf(word, sizeof word, " --%s ", opts[k]);
            ck_assert_msg(strstr(words, word), "mtlab %s --<TAB> lacks --%s: %s", cmds[i],
                          opts[k], words);
        }
        free(words);
    }
    free(out);
    free(path);
    free(script);
    free(db);
    free(dir);
}
END_TEST

/* ---- make install / uninstall ---------------------------------------------------- */

START_TEST(test_make_install) {
    char root[4096], make[512];
    const char *rel_bin;
    checkout_of_bin(root, sizeof root, &rel_bin);
    ck_assert_msg(on_path("make", make, sizeof make), "make is not installed");
    char *dir = test_tmpdir(), *dest = test_join(dir, "dest"), *elsewhere = test_join(dir, "work");
    ck_assert_int_eq(mkdir(elsewhere, 0755), 0);
    char destdir[4200], prefix[] = "PREFIX=/opt/mtlab-test";
    snprintf(destdir, sizeof destdir, "DESTDIR=%s", dest);
    /* -o: the binary under test is not rebuilt (another shard may be running it) */
    const char *install[] = {make,      "-s",    "-C", root, "install", prefix, destdir, "-o", rel_bin,
#ifdef MTLAB_SANITIZE
                             "SANITIZE=1",
#endif
                             NULL};
    /* a make of its own: not the jobserver or variables of a `make check` above */
    unsetenv("MAKEFLAGS");
    unsetenv("MFLAGS");
    unsetenv("MAKELEVEL");
    char *out, *err;
    int rc = run_in(NULL, install, &out, &err);
    ck_assert_msg(rc == 0, "make install: exit %d: %s%s", rc, out, err);
    free(out);
    free(err);

    char path[4400];
    snprintf(path, sizeof path, "%s/opt/mtlab-test/bin/mtlab", dest);
    ck_assert_msg(access(path, X_OK) == 0, "no executable %s", path);
    const char *files[] = {"share/man/man1/mtlab.1", "share/bash-completion/completions/mtlab",
                           "share/mtlab/experiments/example.ini",
                           "share/mtlab/experiments/mmoe/fig2.ini",
                           "share/mtlab/experiments/mmoe/fig4.ini"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/opt/mtlab-test/%s", dest, files[i]);
        ck_assert_msg(is_file(f), "make install wrote no %s", f);
    }
    /* the sweep files are the checkout's, byte for byte */
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/experiments/mmoe/fig4.ini", root);
    snprintf(b, sizeof b, "%s/opt/mtlab-test/share/mtlab/experiments/mmoe/fig4.ini", dest);
    char *ta = test_read_file(a), *tb = test_read_file(b);
    ck_assert_str_eq(ta, tb);
    free(ta);
    free(tb);
    /* the installed man page and completion are what the binary generates */
    snprintf(a, sizeof a, "%s/opt/mtlab-test/share/man/man1/mtlab.1", dest);
    const char *man_args[] = {"help", "--man", NULL};
    char *man = test_mtlab_ok(0, NULL, man_args), *installed = test_read_file(a);
    ck_assert_str_eq(installed, man);
    free(man);
    free(installed);

    /* The installed binary, run from a directory without the checkout:
     * --version, a sweep into a new store (the schema is compiled in),
     * its listing. */
    const char *version[] = {path, "--version", NULL};
    rc = run_in(elsewhere, version, &out, &err);
    ck_assert_msg(rc == 0 && strncmp(out, "mtlab ", 6) == 0, "exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    char *ini = test_write_file(elsewhere, "w.ini",
                                "[experiment]\nname = installed\nrepeats = 1\n"
                                "[data]\ndim = 4\ntrain = 32\nvalidation = 16\ntest = 16\n"
                                "[train]\nsteps = 4\neval_every = 2\nbatch = 8\n"
                                "[model]\nname = shared_bottom\n");
    const char *run[] = {path, "run", "w.ini", "--db", "w.db", "--quiet", NULL};
    rc = run_in(elsewhere, run, &out, &err);
    ck_assert_msg(rc == 0, "installed mtlab run: exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    const char *ls[] = {path, "ls", "--db", "w.db", NULL};
    rc = run_in(elsewhere, ls, &out, &err);
    ck_assert_msg(rc == 0 && strstr(out, "installed"), "exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    /* reproduce finds the installed sweep files (it reads fig2.ini, then
     * fails on the store it cannot create); the build tree's binary has none */
    const char *repro[] = {path, "reproduce", "--db", "/nonexistent-dir/x.db", "--jobs", "1",
                           NULL};
    rc = run_in(elsewhere, repro, &out, &err);
    ck_assert_msg(rc == 1 && strstr(out, "[1/6] mmoe-fig2:") && strstr(err, "/nonexistent-dir"),
                  "installed reproduce: exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    const char *bin = getenv("MTLAB_BIN");
    const char *repro_build[] = {bin, "reproduce", "--db", "/nonexistent-dir/x.db", NULL};
    rc = run_in(elsewhere, repro_build, &out, &err);
    ck_assert_msg(rc == 2 && strstr(err, "experiments/mmoe/fig2.ini not found"), "exit %d: %s", rc,
                  err);
    free(out);
    free(err);

    /* make uninstall removes every file it installed */
    const char *uninstall[] = {make,    "-s",    "-C", root, "uninstall", prefix, destdir,
                               "-o",    rel_bin,
#ifdef MTLAB_SANITIZE
                               "SANITIZE=1",
#endif
                               NULL};
    rc = run_in(NULL, uninstall, &out, &err);
    ck_assert_msg(rc == 0, "make uninstall: exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    ck_assert_msg(access(path, F_OK) != 0, "%s is still there", path);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/opt/mtlab-test/%s", dest, files[i]);
        ck_assert_msg(access(f, F_OK) != 0, "make uninstall left %s", f);
    }
    free(ini);
    free(elsewhere);
    free(dest);
    free(dir);
}
END_TEST

/* ---- mtlab report in a real browser --------------------------------------------- */

/* The text of the first element opened by `open_tag` in dom, up to the
 * matching `close_tag` (not nested), as a new string; NULL when absent. */
static char *element(const char *dom, const char *open_tag, const char *close_tag) {
    const char *a = strstr(dom, open_tag);
    if (!a) return NULL;
    const char *b = strstr(a, close_tag);
    if (!b) return NULL;
    return strndup(a, (size_t)(b - a));
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* Headless chromium loads the report from disk and dumps the DOM it built:
 * the sections' tables hold one row per setting and per trial, the curves
 * are inline SVG with a polyline per setting, a mean from the store is in
 * its setting's row, and the store's text stays text (no element made of
 * the description's <b>). */
START_TEST(test_report_in_browser) {
    char chromium[512];
    if (!on_path("chromium", chromium, sizeof chromium) &&
        !on_path("chromium-browser", chromium, sizeof chromium)) {
        fprintf(stderr, "test_install: SKIPPED the headless-browser check of mtlab report: "
                        "chromium is not installed (make deps installs it)\n");
        return;
    }
    char *dir = test_tmpdir();
    char *db = tiny_store(dir, "tiny-report");
    const char *args[] = {"report", "tiny-report", "--db", db, NULL};
    char *html = test_mtlab_ok(0, NULL, args);
    char *path = test_write_file(dir, "report.html", html);
    char url[4200], profile[4200];
    snprintf(url, sizeof url, "file://%s", path);
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium", dir);
    const char *browse[] = {chromium,    "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--no-first-run", profile,
                            "--dump-dom", url,         NULL};
    char *dom, *err;
    int rc = run_in(dir, browse, &dom, &err);
    ck_assert_msg(rc == 0 && strlen(dom) > 1000, "chromium --dump-dom: exit %d: %.2000s", rc,
                  err);
    free(err);
    ck_assert_ptr_nonnull(strstr(dom, "<h1>tiny-report</h1>"));
    /* the description is text: escaped in the DOM, no <b> element */
    ck_assert_msg(strstr(dom, "a &lt;b&gt;bold&lt;/b&gt; &amp; \"quoted\" sweep"), "%.3000s", dom);
    ck_assert_ptr_null(strstr(dom, "<b>bold"));
    /* settings: one row per model; the mmoe row holds the store's mean of
     * the final test/loss/total (6 significant digits) */
    char *settings = element(dom, "<tbody id=\"settings\">", "</tbody>");
    ck_assert_msg(settings != NULL, "no settings table in the DOM");
    ck_assert_int_eq(count(settings, "<tr>"), 2);
    double mean = test_query(db, "SELECT avg(value) FROM v_final WHERE name = 'test/loss/total' "
                                 "AND model = 'mmoe'");
    ck_assert(isfinite(mean));
    char cell[64];
    snprintf(cell, sizeof cell, "<td class=\"n\">%g ± ", mean);
    char *row = strstr(settings, "<td>mmoe</td>");
    ck_assert_ptr_nonnull(row);
    char *row_end = strstr(row, "</tr>");
    char *at = strstr(row, cell);
    ck_assert_msg(at && at < row_end, "the mmoe row lacks %s: %.*s", cell, (int)(row_end - row),
                  row);
    free(settings);
    /* curves: inline SVG, a polyline per setting in each */
    int n_svg = count(dom, "<svg");
    ck_assert_int_ge(n_svg, 1);
    ck_assert_int_ge(count(dom, "<polyline"), 2 * n_svg);
    /* trials: the runs table has a row per trial of the store */
    int trials = (int)test_query(db, "SELECT count(*) FROM trial");
    ck_assert_int_eq(trials, 4);
    char *h2 = strstr(dom, "<h2>Trials</h2>");
    ck_assert_ptr_nonnull(h2);
    char *trials_table = element(h2, "<tbody", "</tbody>");
    ck_assert_ptr_nonnull(trials_table);
    ck_assert_int_eq(count(trials_table, "<tr"), trials);
    free(trials_table);
    free(dom);
    free(path);
    free(html);
    free(db);
    free(dir);
}
END_TEST

Suite *install_suite(void) {
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("install");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, cli_tables_load, cli_tables_free);
    tcase_add_test(tc, test_man_page);
    tcase_add_test(tc, test_completion);
    tcase_add_test(tc, test_make_install);
    tcase_add_test(tc, test_report_in_browser);
    suite_add_tcase(s, tc);
    return s;
}
