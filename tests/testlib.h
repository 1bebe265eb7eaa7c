/* A tiny test harness: CHECK records a failure and goes on; a test's main
 * returns test_finish(). Exit 77 means "skipped" to ctest. */
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

int test_finish(void);
/* Path of the real model for end-to-end tests, or NULL (then skip with 77). */
const char *test_model_path(void);
/* Reads a whole file; NULL if it cannot. *len gets the size. Free with free(). */
char *test_read_file(const char *path, size_t *len);

#define TEST_SKIP 77

#endif
