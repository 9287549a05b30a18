/* tests/unit/test_error.c - the one error registry (h2ws/h2ws.h,
 * lib/ws/error.c): every h2ws_error value, of every layer, has its own
 * description in h2ws_strerror(); h2ws_h2_strerror() is the same function;
 * codes sit in their documented ranges; and no code named in h2ws.h is
 * missing from this table (the header is read to check). */
#include <ctype.h>
#include <string.h>
#include <h2ws/h2.h>
#include "testutil.h"

#define E(name) {name, #name}
static const struct {
  int code;
  const char *name;
} codes[] = {
    E(H2WS_OK),
    E(H2WS_ERR_WOULDBLOCK),
    E(H2WS_ERR_PAUSE),
    E(H2WS_ERR_INVALID_ARGUMENT),
    E(H2WS_ERR_INVALID_STATE),
    E(H2WS_ERR_BUFFER_FULL),
    E(H2WS_ERR_TOO_LARGE),
    E(H2WS_ERR_NOBUF),
    E(H2WS_ERR_PROTO),
    E(H2WS_ERR_BAD_UTF8),
    E(H2WS_ERR_MSG_TOO_BIG),
    E(H2WS_ERR_BAD_DATA),
    E(H2WS_ERR_HANDSHAKE),
    E(H2WS_ERR_TIMEOUT),
    E(H2WS_ERR_CLOSED),
    E(H2WS_ERR_H2_NO_EXTENDED_CONNECT),
    E(H2WS_ERR_H2_STREAM_RESET),
    E(H2WS_ERR_H2_BAD_RESPONSE),
    E(H2WS_ERR_H2_TOO_MANY_STREAMS),
    E(H2WS_ERR_H2_GOAWAY),
    E(H2WS_ERR_RT_DNS),
    E(H2WS_ERR_RT_CONNECT_REFUSED),
    E(H2WS_ERR_RT_CONNECT),
    E(H2WS_ERR_RT_TLS),
    E(H2WS_ERR_RT_TLS_VERIFY),
    E(H2WS_ERR_RT_ALPN),
    E(H2WS_ERR_RT_LISTEN),
    E(H2WS_ERR_RT_NOT_H2),
    E(H2WS_ERR_NOMEM),
    E(H2WS_ERR_CALLBACK_FAILURE),
    E(H2WS_ERR_INTERNAL),
};
#define NCODES (sizeof codes / sizeof codes[0])

/* Every code has its own, specific description. */
static void test_every_code_described(void) {
  for (size_t i = 0; i < NCODES; i++) {
    const char *s = h2ws_strerror(codes[i].code);
    CHECK(s != NULL);
    if (strcmp(s, "unknown error") == 0)
      fprintf(stderr, "  %s has no description\n", codes[i].name);
    CHECK(strcmp(s, "unknown error") != 0);
    CHECK(strlen(s) > 3);
    for (size_t k = 0; k < i; k++) {
      CHECK(codes[k].code != codes[i].code);
      CHECK(strcmp(h2ws_strerror(codes[k].code), s) != 0);
    }
  }
  CHECK(strcmp(h2ws_strerror(-299), "unknown error") == 0);
  CHECK(strcmp(h2ws_strerror(12345), "unknown error") == 0);
  CHECK(strcmp(h2ws_strerror(H2WS_ERR_RT_CONNECT_REFUSED),
               "connection refused") == 0);
}

/* Everything h2ws_strerror knows is in the table (no code described but
 * unlisted), and the HTTP/2 alias gives the same strings. */
static void test_registry_is_closed(void) {
  for (int c = 0; c >= -1000; c--) {
    int listed = 0;
    for (size_t i = 0; i < NCODES; i++) listed |= codes[i].code == c;
    int known = strcmp(h2ws_strerror(c), "unknown error") != 0;
    if (known != listed) fprintf(stderr, "  code %d\n", c);
    CHECK_EQ(known, listed);
    CHECK(h2ws_h2_strerror(c) == h2ws_strerror(c));
  }
}

/* Codes in their documented ranges (h2ws.h). */
static void test_ranges(void) {
  for (size_t i = 0; i < NCODES; i++) {
    const char *n = codes[i].name;
    int c = codes[i].code;
    if (strncmp(n, "H2WS_ERR_H2_", 12) == 0) CHECK(c <= -250 && c >= -299);
    else if (strncmp(n, "H2WS_ERR_RT_", 12) == 0) CHECK(c <= -300 && c >= -399);
  }
  CHECK(H2WS_ERR_PAUSE > -100 && H2WS_ERR_INVALID_ARGUMENT <= -100);
  CHECK(H2WS_ERR_PROTO <= -200 && H2WS_ERR_CLOSED > -250);
  CHECK(H2WS_ERR_NOMEM <= -900);
}

/* Reads include/h2ws/h2ws.h and checks that every "H2WS_ERR_x = -n" it
 * declares is in the table with the same value. */
static void test_header_matches_table(void) {
  char path[1024];
  /* the source tree, from the build (not __FILE__: a package build maps
   * source paths away with -ffile-prefix-map) */
  snprintf(path, sizeof path, "%s/include/h2ws/h2ws.h", H2WS_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  if (!f) fprintf(stderr, "  cannot open %s\n", path);
  CHECK(f != NULL);
  char line[512];
  int found = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    char *p = strstr(line, "H2WS_ERR_");
    if (!p || (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
      continue;
    char name[64];
    size_t n = 0;
    while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n < sizeof name - 1)
      n++;
    memcpy(name, p, n);
    name[n] = '\0';
    const char *q = p + n;
    while (*q == ' ') q++;
    if (*q != '=') continue; /* a mention in a comment */
    long v = strtol(q + 1, NULL, 10);
    found++;
    size_t i = 0;
    while (i < NCODES && strcmp(codes[i].name, name) != 0) i++;
    if (i == NCODES || codes[i].code != v) {
      fprintf(stderr, "  %s = %ld not in the table\n", name, v);
      bad++;
    }
  }
  fclose(f);
  CHECK_EQ(bad, 0);
  CHECK_EQ(found, (int)NCODES - 1); /* all but H2WS_OK */
}

int main(void) {
  static const tu_case cases[] = {
      {"every_code_described", test_every_code_described},
      {"registry_is_closed", test_registry_is_closed},
      {"ranges", test_ranges},
      {"header_matches_table", test_header_matches_table},
  };
  return TU_RUN(cases);
}
