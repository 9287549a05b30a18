/* apps/check_serve.c - `h2ws check --serve` (WIP). */
#include <stdio.h>
#include "check.h"
int ck_serve(const ck_serve_opts *o) { (void)o; fprintf(stderr, "not yet\n"); return 1; }
