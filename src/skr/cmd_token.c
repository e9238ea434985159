/* cmd_token.c - `skr token`, `skr attest`, `skr release` (placeholder; being written). */
#include "cli.h"

int
cmd_token(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("", "skr token: not built yet");
}

int
cmd_attest(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("", "skr attest: not built yet");
}

int
cmd_release(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_usage_error("", "skr release: not built yet");
}
