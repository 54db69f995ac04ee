/*
 * Emulated clock writes for the lab and the tests (preloaded into linuxptp with LD_PRELOAD).
 *
 * A software PTP testbed on one machine has no PHC: every ptp4l -S reads and would steer the
 * host's CLOCK_REALTIME. This shim lets a servo believe it steers: every clock_adjtime() that
 * writes (frequency, status, tick, offset, a step) is swallowed and answered with the clock's
 * current, unchanged state; reads (modes == 0) pass through. clock_settime() is swallowed too.
 * So ptp4l reaches SLAVE and s2 with the host clock untouched, several at once, with or
 * without a time daemon on the host. ptp4l 3.1.1 changes clocks only through clock_adjtime
 * (nm -D /usr/sbin/ptp4l). Nothing real is disciplined: the clocks are emulated.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/timex.h>
#include <time.h>

typedef int (*adjtime_fn)(clockid_t, struct timex *);

int clock_adjtime(clockid_t clk, struct timex *tx)
{
	static adjtime_fn real;
	if (!real)
		real = (adjtime_fn)dlsym(RTLD_NEXT, "clock_adjtime");
	if (!real)
		return -1;
	if (tx->modes == 0)
		return real(clk, tx);
	struct timex now;
	memset(&now, 0, sizeof(now));
	int ret = real(clk, &now);
	if (ret < 0)
		return ret;
	*tx = now;
	return ret;
}

int clock_settime(clockid_t clk, const struct timespec *ts)
{
	(void)clk;
	(void)ts;
	return 0;
}
