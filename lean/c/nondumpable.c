/*
 * stp_check start-up (issue #20): make the process non-dumpable.
 *
 * A non-dumpable process's /proc/<pid>/{mem,environ,maps,...} cannot be opened and it cannot be
 * ptrace-attached by other processes of the same user (only with CAP_SYS_PTRACE), so code that
 * some other process runs cannot read this checker's memory (the request nonce) or take over its
 * pipes. Called once, first thing in `main` (lean/STP/CheckMain.lean, `setNonDumpable`).
 * Linux only; elsewhere a no-op (the Python sandbox is Linux-only too).
 */
#include <lean/lean.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

LEAN_EXPORT lean_obj_res stp_set_nondumpable(lean_obj_arg world) {
    (void)world;
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        return lean_io_result_mk_error(
            lean_mk_io_user_error(lean_mk_string("prctl(PR_SET_DUMPABLE, 0) failed")));
    }
#endif
    return lean_io_result_mk_ok(lean_box(0));
}
