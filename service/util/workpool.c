/* workpool.c: threads that share CPU-bound work (see workpool.h). */
#include "util/workpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

enum { TASK_QUEUED, TASK_RUNNING, TASK_DONE };

struct work_task {
    void (*fn)(void *part);
    void *part;
    int state;
    int *left; /* the run's parts not done yet */
    struct work_task *next;
};

struct work_pool {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    struct work_task *head;
    bool stop;
    pthread_t *threads;
    int n;
};

static void *worker(void *arg)
{
    struct work_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && !p->head)
            pthread_cond_wait(&p->work, &p->lock);
        if (!p->head)
            break; /* stopping, nothing queued */
        struct work_task *t = p->head;
        p->head = t->next;
        t->state = TASK_RUNNING;
        pthread_mutex_unlock(&p->lock);
        t->fn(t->part);
        pthread_mutex_lock(&p->lock);
        t->state = TASK_DONE;
        (*t->left)--;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct work_pool *work_pool_new(int n)
{
    struct work_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc(n > 0 ? (size_t)n : 1, sizeof(*p->threads));
    if (!p->threads) {
        work_pool_free(p);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            work_pool_free(p);
            return NULL;
        }
        p->n++;
    }
    return p;
}

void work_pool_free(struct work_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int work_pool_threads(const struct work_pool *p)
{
    return p ? p->n : 0;
}

/* Unlink t from the queue (it is queued). */
static void unqueue(struct work_pool *p, struct work_task *t)
{
    for (struct work_task **at = &p->head; *at; at = &(*at)->next)
        if (*at == t) {
            *at = t->next;
            return;
        }
}

void work_pool_start(struct work_pool *p, struct work_run *r, void (*fn)(void *part), void *parts,
                     size_t size, size_t n)
{
    *r = (struct work_run){fn, parts, size, n, p, NULL, (int)n};
    if (n == 0 || !p || p->n == 0 || !(r->tasks = calloc(n, sizeof(*r->tasks))))
        return; /* work_pool_finish runs them all */
    pthread_mutex_lock(&p->lock);
    struct work_task **tail = &p->head;
    while (*tail)
        tail = &(*tail)->next;
    for (size_t i = 0; i < n; i++) {
        r->tasks[i] = (struct work_task){fn, r->parts + i * size, TASK_QUEUED, &r->left, NULL};
        *tail = &r->tasks[i];
        tail = &r->tasks[i].next;
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void work_pool_finish(struct work_run *r)
{
    if (!r->tasks) {
        for (size_t i = 0; i < r->n; i++)
            r->fn(r->parts + i * r->size);
        r->left = 0;
        return;
    }
    struct work_pool *p = r->pool;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < r->n; i++) {
        if (r->tasks[i].state != TASK_QUEUED)
            continue;
        unqueue(p, &r->tasks[i]);
        r->tasks[i].state = TASK_RUNNING;
        pthread_mutex_unlock(&p->lock);
        r->fn(r->tasks[i].part);
        pthread_mutex_lock(&p->lock);
        r->tasks[i].state = TASK_DONE;
        r->left--;
    }
    while (r->left > 0)
        pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    free(r->tasks);
    r->tasks = NULL;
}

void work_pool_run(struct work_pool *p, void (*fn)(void *part), void *parts, size_t size, size_t n)
{
    struct work_run r;
    if (n == 0)
        return;
    /* the first part here at once, the others shared */
    work_pool_start(p, &r, fn, (char *)parts + size, size, n - 1);
    fn(parts);
    work_pool_finish(&r);
}
