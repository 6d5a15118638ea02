/* host.h -- Functions the embedding host provides to the VM.
 *
 * In the wasm build these are imports from module "env"; the native
 * build (for debugging with gcc) links host_native.c instead.
 *   host_write        text written by System.print/write
 *   host_load_module  size of a module's source, or -1 if unknown
 *   host_read_module  copy the source found by host_load_module
 *   host_bind_foreign id of a foreign method, or -1 if unknown
 *   host_foreign      run a foreign method; arguments are in the slots,
 *                     and already encoded (slot_codec.c) at args/length
 *                     (length -1: a value nests too deeply or is cyclic);
 *                     pages is the size of linear memory in 64 KiB pages
 *                     (the host reads args through a view of memory that
 *                     it makes again only when memory has grown);
 *                     returns a number result's bits, or a status as
 *                     signalling-NaN bits (slot_codec.c, kwForeignReply):
 *                     the result is in slot 0, null, true, false or
 *                     written in wren_foreign_result_buffer(), or slot 0
 *                     holds an error to raise instead
 *   host_clock        seconds since an arbitrary start (System.clock)
 *   host_breakpoint   execution reached a line with a breakpoint (module,
 *                     line); the host may inspect the stack (wren_debug_*)
 *                     and call into the VM; non-zero means slot 0 holds an
 *                     error to raise at that line instead of running it
 */
#ifndef KW_HOST_H
#define KW_HOST_H

#include <stdint.h>

#ifdef __wasm__
#define KW_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#else
#define KW_IMPORT(name)
#endif

KW_IMPORT(host_write) void host_write(int vm, const char* text, int length);
KW_IMPORT(host_load_module) int host_load_module(int vm, const char* name, int length);
KW_IMPORT(host_read_module) void host_read_module(int vm, char* buffer);
KW_IMPORT(host_bind_foreign)
int host_bind_foreign(int vm, const char* module, int moduleLength,
                      const char* className, int classLength, int isStatic,
                      const char* signature, int signatureLength);
KW_IMPORT(host_foreign)
int64_t host_foreign(int vm, int methodId, const uint8_t* args, int length, int pages);
KW_IMPORT(host_clock) double host_clock(void);
KW_IMPORT(host_breakpoint)
int host_breakpoint(int vm, const char* module, int moduleLength, int line);

#endif
