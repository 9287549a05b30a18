/* fuzz/fuzz_frame_client.c - libFuzzer harness: arbitrary bytes into a
 * client-role h2ws_ws (the server harness with the client role). */
#define FUZZ_ROLE H2WS_ROLE_CLIENT
#include "fuzz_frame_server.c"
