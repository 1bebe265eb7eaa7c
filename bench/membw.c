/* membw: streaming read bandwidth of main memory, the ceiling of token
 * generation (every decoded token reads all the weights once).
 *
 *   cc -std=c11 -O2 -march=native -pthread bench/membw.c -o membw
 *   membw [-s MiB] [-r REPS] [-t LIST]     (default: 1024 MiB, 7 reps, -t 1,2)
 *
 * The buffer is filled first (so every page is mapped), then each thread
 * streams through its own contiguous slice with the widest vector loads the
 * compiler may use (AVX-512, else AVX2, else 64-bit words), folding them into
 * a few independent accumulators so nothing but the loads limits the loop.
 * The time of one pass runs from the first thread's start to the last
 * thread's end (threads start together at a barrier); the best of REPS
 * passes is reported, in GB/s (10^9 bytes per second), one line per thread
 * count:
 *
 *   membw: threads=1 size_mib=1024 best_gbs=31.42 median_gbs=30.87 isa=avx512
 *
 * Not part of the CMake build; bench/compare_llamacpp.sh builds and runs it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define ISA "avx512"
#elif defined(__AVX2__)
#define ISA "avx2"
#else
#define ISA "scalar"
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads [p, p + n) (n a multiple of 512); returns a value that depends on every byte. */
static uint64_t read_stream(const uint8_t *p, size_t n) {
#if defined(__AVX512F__)
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < n; i += 512) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
        a4 = _mm512_xor_si512(a4, _mm512_load_si512((const void *)(p + i + 256)));
        a5 = _mm512_xor_si512(a5, _mm512_load_si512((const void *)(p + i + 320)));
        a6 = _mm512_xor_si512(a6, _mm512_load_si512((const void *)(p + i + 384)));
        a7 = _mm512_xor_si512(a7, _mm512_load_si512((const void *)(p + i + 448)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)),
                          _mm512_xor_si512(_mm512_xor_si512(a4, a5), _mm512_xor_si512(a6, a7)));
    return (uint64_t)_mm512_reduce_add_epi64(a0);
#elif defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
        a4 = _mm256_xor_si256(a4, _mm256_load_si256((const __m256i *)(p + i + 128)));
        a5 = _mm256_xor_si256(a5, _mm256_load_si256((const __m256i *)(p + i + 160)));
        a6 = _mm256_xor_si256(a6, _mm256_load_si256((const __m256i *)(p + i + 192)));
        a7 = _mm256_xor_si256(a7, _mm256_load_si256((const __m256i *)(p + i + 224)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)),
                          _mm256_xor_si256(_mm256_xor_si256(a4, a5), _mm256_xor_si256(a6, a7)));
    uint64_t w[4];
    _mm256_storeu_si256((__m256i *)w, a0);
    return w[0] ^ w[1] ^ w[2] ^ w[3];
#else
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i < n / 8; i += 4) { a0 ^= q[i]; a1 ^= q[i + 1]; a2 ^= q[i + 2]; a3 ^= q[i + 3]; }
    return a0 ^ a1 ^ a2 ^ a3;
#endif
}

typedef struct job {
    const uint8_t *p;
    size_t n;
    pthread_barrier_t *bar;
    double t0, t1;
    uint64_t sink;
} job;

static void *worker(void *arg) {
    job *j = arg;
    pthread_barrier_wait(j->bar);
    j->t0 = now_s();
    j->sink = read_stream(j->p, j->n);
    j->t1 = now_s();
    return NULL;
}

/* One pass with nt threads; returns seconds (first start to last end). */
static double pass(const uint8_t *buf, size_t size, int nt, uint64_t *sink) {
    pthread_t th[64];
    job jobs[64];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nt);
    size_t slice = size / (size_t)nt / 512 * 512;
    for (int k = 0; k < nt; k++) {
        jobs[k] = (job){ .p = buf + (size_t)k * slice, .n = slice, .bar = &bar };
        if (k) pthread_create(&th[k], NULL, worker, &jobs[k]);
    }
    worker(&jobs[0]);
    double t0 = jobs[0].t0, t1 = jobs[0].t1;
    *sink += jobs[0].sink;
    for (int k = 1; k < nt; k++) {
        pthread_join(th[k], NULL);
        if (jobs[k].t0 < t0) t0 = jobs[k].t0;
        if (jobs[k].t1 > t1) t1 = jobs[k].t1;
        *sink += jobs[k].sink;
    }
    pthread_barrier_destroy(&bar);
    return (t1 - t0) * (double)size / (double)(slice * (size_t)nt);  /* scale to the whole buffer */
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long arg_long(const char *flag, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || (*end && *end != ',') || v < lo || v > hi) {
        fprintf(stderr, "membw: %s expects integers in %ld..%ld, got '%s'\n", flag, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    size_t mib = 1024;
    int reps = 7, threads[16] = { 1, 2 }, n_threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            puts("usage: membw [-s MiB] [-r REPS] [-t LIST]\n"
                 "Streaming read bandwidth (best of REPS passes over a MiB buffer) per thread count.");
            return 0;
        }
        if (i + 1 >= argc || (strcmp(a, "-s") && strcmp(a, "-r") && strcmp(a, "-t"))) {
            fprintf(stderr, "membw: bad option '%s' (see membw --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-s")) mib = (size_t)arg_long(a, v, 1, 1 << 20);
        else if (!strcmp(a, "-r")) reps = (int)arg_long(a, v, 1, 1000);
        else {
            n_threads = 0;
            for (const char *p = v;;) {
                if (n_threads == 16) { fprintf(stderr, "membw: -t: at most 16 values\n"); return 2; }
                threads[n_threads++] = (int)arg_long(a, p, 1, 64);
                p = strchr(p, ',');
                if (!p) break;
                p++;
            }
        }
    }
    size_t size = mib << 20;
    uint8_t *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) { fprintf(stderr, "membw: cannot map %zu MiB: %s\n", mib, strerror(errno)); return 1; }
#ifdef MADV_HUGEPAGE
    madvise(buf, size, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < size; i += 8) { uint64_t v = i * 0x9E3779B97F4A7C15ull; memcpy(buf + i, &v, 8); }

    uint64_t sink = 0;
    double *gbs = malloc(sizeof *gbs * (size_t)reps);
    if (!gbs) return 1;
    for (int ti = 0; ti < n_threads; ti++) {
        int nt = threads[ti];
        pass(buf, size, nt, &sink);  /* warm-up */
        for (int r = 0; r < reps; r++) gbs[r] = (double)size / pass(buf, size, nt, &sink) / 1e9;
        qsort(gbs, (size_t)reps, sizeof *gbs, cmp_d);
        printf("membw: threads=%d size_mib=%zu best_gbs=%.2f median_gbs=%.2f isa=%s\n", nt, mib,
               gbs[reps - 1], gbs[reps / 2], ISA);
        fflush(stdout);
    }
    fprintf(stderr, "membw: (checksum %llx)\n", (unsigned long long)sink);
    free(gbs);
    munmap(buf, size);
    return 0;
}
