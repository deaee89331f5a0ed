#include "testutil.h"

#include "models/model.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

char *test_read_file(const char *path) {
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "cannot open %s", path);
    char *text = slurp(fd);
    close(fd);
    return text;
}

char *test_mtlab_ok(int expect, char **errout, const char *const *args) {
    char *out, *err;
    int rc = run_mtlab(&out, &err, args);
    ck_assert_msg(rc == expect, "mtlab %s %s: exit %d (expected %d): %s", args[0],
                  args[1] ? args[1] : "", rc, expect, err);
    if (errout)
        *errout = err;
    else
        free(err);
    return out;
}

int test_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

int run_mtlab(char **out, char **errout, const char *const *args) {
    return run_mtlab_in(NULL, out, errout, args);
}

int run_mtlab_in(const char *dir, char **out, char **errout, const char *const *args) {
    const char *bin = getenv("MTLAB_BIN");
    ck_assert_msg(bin != NULL, "MTLAB_BIN is not set (run the tests through `make check`)");
    char out_path[] = "/tmp/mtlab-out-XXXXXX", err_path[] = "/tmp/mtlab-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    ck_assert(out_fd >= 0 && err_fd >= 0);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        const char *argv[64];
        int n = 0;
        argv[n++] = bin;
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        if (dir && chdir(dir) != 0) _exit(126);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    lseek(out_fd, 0, SEEK_SET);
    lseek(err_fd, 0, SEEK_SET);
    char *o = slurp(out_fd), *e = slurp(err_fd);
    close(out_fd);
    close(err_fd);
    unlink(out_path);
    unlink(err_path);
    if (out)
        *out = o;
    else
        free(o);
    if (errout)
        *errout = e;
    else
        free(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *test_tmpdir(void) {
    char *dir = strdup("/tmp/mtlab-test-XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
    return dir;
}

char *test_join(const char *dir, const char *name) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    ck_assert_ptr_nonnull(path);
    sprintf(path, "%s/%s", dir, name);
    return path;
}

char *test_write_file(const char *dir, const char *name, const char *text) {
    char *path = test_join(dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

double test_query(const char *db_path, const char *sql) {
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *st;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    double v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : 0.0 / 0.0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

pid_t test_spawn_mtlab(const char *const *args, const char *out_path, const char *err_path,
                       bool new_session) {
    const char *bin = getenv("MTLAB_BIN");
    ck_assert_msg(bin != NULL, "MTLAB_BIN is not set (run the tests through `make check`)");
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        if (new_session) setsid();
        const char *argv[64];
        int n = 0;
        argv[n++] = bin;
        for (int i = 0; args[i] && n < 63; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

void test_set_hp(void *model_config, const char *model, const char *name, double value) {
    const model_ops_t *ops = model_find(model);
    ck_assert_msg(ops != NULL, "no model %s", model);
    if (model_hp_find(ops, name) < 0) return;
    err_t err = {0};
    ck_assert_msg(model_config_set(model_config, ops, name, value, &err) == 0, "%s", err.msg);
}

int test_split_words(char *line, const char **words, int max) {
    int n = 0;
    char *in = line, *out = line;
    while (*in) {
        while (*in == ' ' || *in == '\t')
            in++;
        if (!*in) break;
        ck_assert_int_lt(n, max - 1);
        words[n++] = out;
        while (*in && *in != ' ' && *in != '\t') {
            if (*in == '\'') {
                for (in++; *in && *in != '\''; in++)
                    *out++ = *in;
                ck_assert_msg(*in == '\'', "unterminated quote in %s", line);
                in++;
            } else if (*in == '\\' && in[1]) {
                *out++ = in[1];
                in += 2;
            } else {
                *out++ = *in++;
            }
        }
        if (*in) in++; /* the blank: out never passes in, so this stays safe */
        *out++ = '\0';
    }
    words[n] = NULL;
    return n;
}

char *test_rerun_shown(const char *db_path, int id) {
    char ids[16], *out, *err;
    snprintf(ids, sizeof ids, "%d", id);
    const char *show[] = {"show", ids, "--db", db_path, NULL};
    ck_assert_int_eq(run_mtlab(&out, &err, show), 0);
    free(err);
    static const char head[] = "reproduce (same bits):\n  build/mtlab ";
    char *line = strstr(out, head);
    ck_assert_msg(line != NULL, "trial %d: show printed no reproduce line: %s", id, out);
    line += strlen(head);
    *strchr(line, '\n') = '\0';
    const char *args[64];
    int n = test_split_words(line, args, 60);
    args[n++] = "--digits";
    args[n++] = "17";
    args[n] = NULL;
    char *train_out;
    int rc = run_mtlab(&train_out, &err, args);
    ck_assert_msg(rc == 0, "trial %d: `%s` exited %d: %s", id, line, rc, err);
    free(out);
    free(err);
    return train_out;
}
