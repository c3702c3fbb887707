/* Failure points for libfiu chosen by call count: "fail the 7th fdatasync", "fail every
 * write from the 3rd on". libfiu decides each call through fiu_nth_decide, which counts
 * the calls of each armed point; the Python side passes it to fiu_enable_external.
 * Built by tests/faults/fiu.py with the system's C compiler; it links against nothing. */
#include <string.h>

#define MAX_POINTS 16
#define NAME_MAX_LEN 96

static char names[MAX_POINTS][NAME_MAX_LEN];
static long nth[MAX_POINTS];
static long seen[MAX_POINTS];
static long failed[MAX_POINTS];
static int forever[MAX_POINTS];
static int points = 0;
static volatile int paused = 1;

/* Count calls of ``name`` from now; fail call number ``n`` (from 1), or every call from
 * it on when ``keep`` is set. Returns the point's slot, or -1 when full. */
int fiu_nth_arm(const char *name, long n, int keep) {
    if (points >= MAX_POINTS || strlen(name) >= NAME_MAX_LEN) return -1;
    strcpy(names[points], name);
    nth[points] = n;
    forever[points] = keep;
    seen[points] = 0;
    failed[points] = 0;
    return points++;
}

/* While paused (the default), no armed point fails and no call is counted. */
void fiu_nth_pause(int on) { paused = on; }

long fiu_nth_failed(void) {
    long total = 0;
    for (int i = 0; i < points; i++) total += __atomic_load_n(&failed[i], __ATOMIC_SEQ_CST);
    return total;
}

int fiu_nth_decide(const char *name, int *failnum, void **failinfo, unsigned int *flags) {
    (void)failnum; (void)failinfo; (void)flags;
    if (paused) return 0;
    for (int i = 0; i < points; i++) {
        if (strcmp(name, names[i]) != 0) continue;
        long call = __atomic_add_fetch(&seen[i], 1, __ATOMIC_SEQ_CST);
        int fail = forever[i] ? call >= nth[i] : call == nth[i];
        if (fail) __atomic_add_fetch(&failed[i], 1, __ATOMIC_SEQ_CST);
        return fail;
    }
    return 0;
}
