/* prof.h - `numaslab prof` (tools/prof.c). */
#ifndef NS_TOOL_PROF_H
#define NS_TOOL_PROF_H
#include <stdbool.h>
/* Print the top sites of the heap profile in file; symbols: name frames
 * with addr2line.  Returns the exit status. */
int prof_command(const char *file, int top, bool symbols);
#endif
