/* A tiny test harness: CHECK records a failure and goes on; a test's main
 * returns test_finish(). Exit 77 means "skipped" to ctest (SKIP_RETURN_CODE in
 * CMakeLists.txt): a test that could not run all it holds (no model, no test
 * venv, built without PCRE2) calls test_skip() with the reason and then ends
 * as skipped, never as a plain pass. scripts/run_tests.sh counts the skips
 * and, under CI=true, fails them. */
#ifndef SLM_TESTLIB_H
#define SLM_TESTLIB_H

#include <stdio.h>
#include <stddef.h>

extern int test_failures;
extern int test_checks;

#define CHECK(cond) do { test_checks++; if (!(cond)) { test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { test_checks++; if (!(cond)) { test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* 1 when a CHECK failed; else 77 when test_skip() was called; else 0. */
int test_finish(void);
/* Records that a part of the test did not run: prints "SKIP: <reason>". */
void test_skip(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
extern int test_skips;
/* Path of the real model for end-to-end tests, or NULL (then skip with 77). */
const char *test_model_path(void);
/* Reads a whole file; NULL if it cannot. *len gets the size. Free with free(). */
char *test_read_file(const char *path, size_t *len);

/* Writes buf[0..len) to a temporary file, opens it with slm_model_open and
 * CHECKs that the open fails, returns no model, and leaves a message that
 * contains `want`; `what` names the case in failures. */
void test_expect_model_fail(const char *what, const void *buf, size_t len, const char *want);

/* A private temporary folder for the test's files, made on the first call
 * (NULL, with a message, if it cannot be); test_tmp_path writes
 * "<folder>/name" into buf; test_tmp_cleanup removes the folder and all in
 * it. */
const char *test_tmp_dir(void);
void test_tmp_path(char *buf, size_t cap, const char *name);
void test_tmp_cleanup(void);

/* The Euclidean norm of v[0..n), in double. */
double test_norm(const float *v, size_t n);

#define TEST_SKIP 77

#endif
