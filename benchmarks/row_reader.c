/* The benchmarks' row reader in C: reads many ready Bokeh sessions' websockets on one
 * thread of its own and keeps (seq, time ms, received s, tag) of every streamed row.
 *
 * The scale-out benchmark runs its clients on the two cores its servers use, so what a
 * client spends per update is taken from them. This is lean_client.RowReader's loop with
 * the Python taken out: one epoll wait for all sessions, a pause so one wakeup reads many
 * updates, one read(2) per socket, and the fan-out's messages (one ColumnsStreamed event,
 * JSON columns, time and seq first) parsed for those two columns only. Any other message
 * carrying streamed rows (Bokeh's own route with binary buffers) is kept whole, with its
 * receive stamp, for Python to decode (rr_next_other).
 *
 * Built by benchmarks/lean_client.py with the machine's C compiler; not part of the
 * package.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 65536
#define MAX_FRAMES 64

typedef struct {
    int fd, tag;
    unsigned char *in; /* bytes read, not yet a whole frame */
    size_t in_len, in_cap;
    unsigned char *msg; /* the frames of the message being read, one after another */
    size_t msg_len, msg_cap;
    size_t frame_off[MAX_FRAMES], frame_len[MAX_FRAMES];
    int frames, expected;
} sock_t;

typedef struct other {
    struct other *next;
    double received;
    int tag;
    size_t len; /* data: frame count, then each frame as (uint64 length, bytes) */
    unsigned char data[];
} other_t;

typedef struct {
    int epoll_fd, pause_us;
    volatile int stopping;
    pthread_t thread;
    pthread_mutex_t lock;
    sock_t *sockets[MAX_FDS];
    double *rows; /* 4 doubles a row */
    size_t rows_len, rows_cap;
    other_t *others, *others_tail;
    long fast_reads;
} reader_t;

static int grow(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : 4096;
    while (cap2 < need) cap2 *= 2;
    unsigned char *b = realloc(*buf, cap2);
    if (!b) return -1;
    *buf = b;
    *cap = cap2;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void add_row(reader_t *r, double seq, double time_ms, double received, int tag) {
    if (r->rows_len + 4 > r->rows_cap) {
        size_t cap = r->rows_cap ? r->rows_cap * 2 : 1 << 16;
        double *rows = realloc(r->rows, cap * sizeof(double));
        if (!rows) return;
        r->rows = rows;
        r->rows_cap = cap;
    }
    double *row = r->rows + r->rows_len;
    row[0] = seq, row[1] = time_ms, row[2] = received, row[3] = tag;
    r->rows_len += 4;
}

/* A JSON list of numbers at p ("[1,2,3]"), up to end: the count parsed into out, or -1. */
static int numbers(const char *p, const char *end, double *out, int max) {
    if (p >= end || *p != '[') return -1;
    p++;
    int n = 0;
    while (p < end && n < max) {
        char *next;
        out[n++] = strtod(p, &next);
        if (next == p || next >= end) return -1;
        if (*next == ']') return n;
        if (*next != ',') return -1;
        p = next + 1;
    }
    return -1;
}

static const char TIME_KEY[] = "\"entries\":[[\"time\",";
static const char SEQ_KEY[] = "]],[\"seq\",";

/* The fan-out's message: (seq, time) rows parsed into the reader, 1; else 0. */
static int fast_rows(reader_t *r, const char *content, size_t len, double received, int tag) {
    const char *end = content + len;
    const char *first = memmem(content, len, "ColumnsStreamed", 15);
    if (!first || memmem(first + 15, end - first - 15, "ColumnsStreamed", 15)) return 0;
    const char *t = memmem(content, len, TIME_KEY, sizeof TIME_KEY - 1);
    if (!t) return 0;
    double times[256], seqs[256];
    t += sizeof TIME_KEY - 1;
    int nt = numbers(t, end, times, 256);
    if (nt <= 0) return 0;
    const char *s = memchr(t, ']', end - t);
    if (!s || (size_t)(end - s) < sizeof SEQ_KEY - 1 || memcmp(s, SEQ_KEY, sizeof SEQ_KEY - 1))
        return 0;
    int ns = numbers(s + sizeof SEQ_KEY - 1, end, seqs, 256);
    if (ns != nt) return 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < nt; i++) add_row(r, seqs[i], times[i], received, tag);
    r->fast_reads++;
    pthread_mutex_unlock(&r->lock);
    return 1;
}

static void message(reader_t *r, sock_t *s, double received) {
    const char *header = (const char *)s->msg + s->frame_off[0];
    const char *content = (const char *)s->msg + s->frame_off[2];
    size_t content_len = s->frame_len[2];
    if (!memmem(header, s->frame_len[0], "\"PATCH-DOC\"", 11)) return;
    if (!memmem(content, content_len, "ColumnsStreamed", 15)) return;
    if (s->frames == 3 && fast_rows(r, content, content_len, received, s->tag)) return;
    size_t len = 8;
    for (int i = 0; i < s->frames; i++) len += 8 + s->frame_len[i];
    other_t *o = malloc(sizeof(other_t) + len);
    if (!o) return;
    o->next = NULL, o->received = received, o->tag = s->tag, o->len = len;
    uint64_t count = s->frames;
    unsigned char *p = o->data;
    memcpy(p, &count, 8), p += 8;
    for (int i = 0; i < s->frames; i++) {
        uint64_t n = s->frame_len[i];
        memcpy(p, &n, 8), p += 8;
        memcpy(p, s->msg + s->frame_off[i], n), p += n;
    }
    pthread_mutex_lock(&r->lock);
    if (r->others_tail) r->others_tail->next = o;
    else r->others = o;
    r->others_tail = o;
    pthread_mutex_unlock(&r->lock);
}

static int expected_frames(const unsigned char *header, size_t len) {
    const char *key = memmem(header, len, "\"num_buffers\":", 14);
    if (!key) return 3;
    const char *p = key + 14, *end = (const char *)header + len;
    while (p < end && *p == ' ') p++;
    int n = 0;
    while (p < end && *p >= '0' && *p <= '9') n = n * 10 + (*p++ - '0');
    return 3 + 2 * n < MAX_FRAMES ? 3 + 2 * n : MAX_FRAMES;
}

static void frame(reader_t *r, sock_t *s, int opcode, const unsigned char *p, size_t n,
                  double received) {
    if (opcode == 0x9) { /* ping: answer with a pong, masked (with a zero key) */
        unsigned char pong[6 + 125];
        if (n > 125) return;
        pong[0] = 0x8A, pong[1] = 0x80 | (unsigned char)n;
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, p, n);
        ssize_t ignored = write(s->fd, pong, 6 + n);
        (void)ignored;
        return;
    }
    if (opcode != 0x1 && opcode != 0x2) return;
    if (grow(&s->msg, &s->msg_cap, s->msg_len + n + 1)) return;
    memcpy(s->msg + s->msg_len, p, n);
    s->frame_off[s->frames] = s->msg_len, s->frame_len[s->frames] = n;
    s->msg_len += n;
    s->msg[s->msg_len] = 0; /* strtod stops at the latest here */
    s->frames++;
    if (s->frames == 1) s->expected = expected_frames(p, n);
    if (s->frames == s->expected) {
        message(r, s, received);
        s->frames = 0, s->msg_len = 0;
    }
}

static void parse(reader_t *r, sock_t *s, double received) {
    size_t off = 0, size = s->in_len;
    const unsigned char *b = s->in;
    while (size - off >= 2) {
        uint64_t len = b[off + 1] & 0x7F;
        size_t start = off + 2;
        if (len == 126) {
            if (size - off < 4) break;
            len = ((uint64_t)b[start] << 8) | b[start + 1];
            start += 2;
        } else if (len == 127) {
            if (size - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | b[start + i];
            start += 8;
        }
        if (size - start < len) break;
        frame(r, s, b[off] & 0x0F, b + start, len, received);
        off = start + len;
    }
    if (off) {
        memmove(s->in, s->in + off, size - off);
        s->in_len = size - off;
    }
}

static void drop(reader_t *r, sock_t *s) {
    epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
    r->sockets[s->fd] = NULL;
    free(s->in), free(s->msg), free(s);
}

static void *run(void *arg) {
    reader_t *r = arg;
    struct epoll_event events[512];
    while (!r->stopping) {
        /* Woken by one session's update, the next are on their way: one wakeup reads
         * them all. */
        if (r->pause_us) usleep(r->pause_us);
        int n = epoll_wait(r->epoll_fd, events, 512, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            sock_t *s = fd >= 0 && fd < MAX_FDS ? r->sockets[fd] : NULL;
            if (!s) continue;
            if (grow(&s->in, &s->in_cap, s->in_len + 65536)) continue;
            ssize_t got = read(fd, s->in + s->in_len, s->in_cap - s->in_len);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                drop(r, s);
                continue;
            }
            s->in_len += got;
            parse(r, s, now_s());
        }
    }
    return NULL;
}

reader_t *rr_new(int pause_us) {
    reader_t *r = calloc(1, sizeof(reader_t));
    if (!r) return NULL;
    r->pause_us = pause_us;
    r->epoll_fd = epoll_create1(0);
    pthread_mutex_init(&r->lock, NULL);
    if (r->epoll_fd < 0 || pthread_create(&r->thread, NULL, run, r)) {
        free(r);
        return NULL;
    }
    return r;
}

/* Read fd from now on; buffered: bytes already read from it. 0, or -1. */
int rr_adopt(reader_t *r, int fd, const unsigned char *buffered, size_t n, int tag) {
    if (fd < 0 || fd >= MAX_FDS || r->sockets[fd]) return -1;
    sock_t *s = calloc(1, sizeof(sock_t));
    if (!s || grow(&s->in, &s->in_cap, n + 65536)) return -1;
    s->fd = fd, s->tag = tag, s->expected = 3;
    memcpy(s->in, buffered, n);
    s->in_len = n; /* parsed with the next bytes read, on the reader's thread */
    r->sockets[fd] = s;
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

/* Up to max rows (4 doubles each) moved into out; how many. */
size_t rr_take(reader_t *r, double *out, size_t max) {
    pthread_mutex_lock(&r->lock);
    size_t n = r->rows_len / 4 < max ? r->rows_len / 4 : max;
    memcpy(out, r->rows, n * 4 * sizeof(double));
    memmove(r->rows, r->rows + n * 4, (r->rows_len - n * 4) * sizeof(double));
    r->rows_len -= n * 4;
    pthread_mutex_unlock(&r->lock);
    return n;
}

size_t rr_pending(reader_t *r) {
    pthread_mutex_lock(&r->lock);
    size_t n = r->rows_len / 4;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* The oldest message kept for Python (free it with rr_free), or NULL. */
other_t *rr_next_other(reader_t *r) {
    pthread_mutex_lock(&r->lock);
    other_t *o = r->others;
    if (o) {
        r->others = o->next;
        if (!r->others) r->others_tail = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    return o;
}

void rr_free(void *p) { free(p); }

long rr_fast_reads(reader_t *r) { return r->fast_reads; }

/* Stop reading (the sockets stay open: their owners close them) and free everything. */
void rr_stop(reader_t *r) {
    r->stopping = 1;
    pthread_join(r->thread, NULL);
    close(r->epoll_fd);
    for (int fd = 0; fd < MAX_FDS; fd++)
        if (r->sockets[fd]) free(r->sockets[fd]->in), free(r->sockets[fd]->msg), free(r->sockets[fd]);
    for (other_t *o = r->others; o;) {
        other_t *next = o->next;
        free(o);
        o = next;
    }
    free(r->rows);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
