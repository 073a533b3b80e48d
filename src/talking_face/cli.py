"""The `talking-face` command.

    talking-face generate --image face.jpg --audio speech.wav --out out.mp4 [--model URI] [--no-paste-back]
                          [--blink-rate 0.3 | --no-blinks] [--mouth-strength 0.5]
    talking-face promote --version 3 [--force]
    talking-face serve [--model URI] [--host 127.0.0.1] [--port 8000] [--token T | --token-file F] ...

Bad input (no face, unreadable image or audio, silent or empty audio, a model that does not resolve) ends
with one line on stderr and exit status 1, and no output file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from talking_face.features.eyes import DEFAULT_BLINK_RATE
from talking_face.serving.resolve import DEFAULT_MODEL_NAME, DEFAULT_MODEL_URI


model_option = click.option(
    "--model",
    "model_uri",
    help="models:/ or runs:/ URI (in MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here), MLflow model folder, .pt."
    f"  [default: {DEFAULT_MODEL_URI}, else the pretrained GRID model shipped with talking-face]",
)


def resolve_model(model_uri: str | None):
    """The model --model names, or without it the champion, else the shipped pretrained one; says which."""
    from talking_face.serving.resolve import default_model, load_model, tracking_uri

    store = tracking_uri(in_process=False)
    if model_uri is not None:
        return load_model(model_uri, store), model_uri
    model, which = default_model(store)
    click.echo(f"model: {which}", err=True)
    return model, which


def _fail(error: BaseException) -> click.ClickException:
    return click.ClickException(" ".join(str(error).split()))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Talking-face video from one photo and speech (MAN, Kumar et al.)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")


@main.command()
@click.option("--image", required=True, type=click.Path(path_type=Path), help="Photo with a face (jpg, png ...).")
@click.option("--audio", required=True, type=click.Path(path_type=Path), help="Speech (wav, mp3, m4a, flac, ogg ...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The mp4 to write.")
@model_option
@click.option("--paste-back/--no-paste-back", default=True, show_default=True, help="Whole photo, or face crop only.")
@click.option(
    "--blink-rate",
    type=click.FloatRange(min=0),
    help=f"Blinks per second.  [default: {DEFAULT_BLINK_RATE}]",
)
@click.option("--no-blinks", is_flag=True, help="Eyes stay open (the same as --blink-rate 0).")
@click.option(
    "--mouth-strength",
    type=click.FloatRange(0, 1),
    help="How far the mouth moves from the photo, 0 (still) to 1 (as trained).  [default: the model's, chosen in training]",
)
@click.option("--threads", type=click.IntRange(min=1), help="Torch threads.  [default: all cores but one]")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    image: Path,
    audio: Path,
    out: Path,
    model_uri: str | None,
    paste_back: bool,
    blink_rate: float | None,
    no_blinks: bool,
    mouth_strength: float | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Animate the face of a photo to speech: an H.264 mp4 with the speech as its sound."""
    from talking_face.serving.video import generate_video

    if no_blinks and blink_rate:
        raise click.UsageError("--no-blinks and --blink-rate contradict each other; give one of them")
    rate = 0.0 if no_blinks else DEFAULT_BLINK_RATE if blink_rate is None else blink_rate
    try:
        model, _ = resolve_model(model_uri)
        result = generate_video(
            model, image, audio, out, paste_back=paste_back, progress=not quiet, threads=threads, blink_rate=rate,
            mouth_strength=mouth_strength,
        )  # fmt: skip
    except (ValueError, OSError) as error:  # MediaError, ModelNotFound and file-system errors
        raise _fail(error) from None
    click.echo(f"{result.path}: {result.frames} frames, {result.width}x{result.height}, {result.duration_s:.2f} s")


@main.command()
@click.option("--version", "version", required=True, type=int, help="The registered model version to promote.")
@click.option("--force", is_flag=True, help="Skip the promotion checks.")
@click.option("--model-name", default=DEFAULT_MODEL_NAME, show_default=True, help="The registered model.")
def promote(version: int, force: bool, model_name: str) -> None:
    """Make a model version the champion if it passes the promotion gate.

    Moves the `champion` alias to --version when it beats the current champion and the static baseline (or
    always, with --force); exits with status 1 when the champion stays where it was."""
    from mlflow.exceptions import MlflowException

    from talking_face.serving.resolve import missing_sqlite_store, tracking_uri

    store = tracking_uri(in_process=False)
    if missing_sqlite_store(store) is not None:
        raise _fail(f"{store}: no MLflow tracking database here (set MLFLOW_TRACKING_URI)")
    try:
        from talking_face.registry.promotion import promote_version
    except ImportError as error:
        raise _fail(f"promotion is not available: {error}") from None
    try:
        decision = promote_version(model_name, version, force=force, tracking_uri=store)
    except (ValueError, OSError, MlflowException) as error:
        raise _fail(error) from None
    click.echo(f"{model_name} version {version}: {decision.decision} ({decision.reason})")
    if not decision.promoted:
        raise SystemExit(1)


class KedroCommands(click.Group):
    """Project commands for `kedro` (Kedro imports `<package>.cli.cli`; they override its own): its `run`,
    ending with one line and no traceback when a data check stops the run (the check's report is written
    first). Built on first use, so that `talking-face` does not import Kedro's command line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["run"]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name != "run":
            return None
        from kedro.framework.cli.project import run as kedro_run

        from talking_face.checks import DataCheckError

        def run(*args, **kwargs):
            try:
                return kedro_run.callback(*args, **kwargs)
            except DataCheckError as error:
                raise click.ClickException(error.line()) from None

        return click.Command(
            "run", callback=run, params=kedro_run.params, help=kedro_run.help, short_help=kedro_run.short_help
        )


cli = KedroCommands()

if __name__ == "__main__":
    main()



@main.command()
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--token", envvar="TALKING_FACE_TOKEN", help="Access token for every client (env TALKING_FACE_TOKEN).")
@click.option(
    "--token-file",
    envvar="TALKING_FACE_TOKEN_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File of `<user> <token>` lines, one per user, re-read when it changes (env TALKING_FACE_TOKEN_FILE).",
)
@click.option(
    "--insecure-no-token", is_flag=True, help="Bind beyond loopback without a token (a proxy in front does auth)."
)
@click.option("--allowed-origin", multiple=True, help="Another web origin allowed to use the server (repeatable).")
@click.option("--max-sessions", default=4, show_default=True, type=click.IntRange(min=1), help="More get 503.")
@click.option(
    "--max-sessions-per-client", type=click.IntRange(min=1), help="Per token user or address.  [default: half]"
)
@click.option("--queue-frames", default=25, show_default=True, type=click.IntRange(min=1), help="Per client.")
@click.option(
    "--backpressure",
    type=click.Choice(["drop", "block"]),
    default="drop",
    show_default=True,
    help="A client reading too slowly: drop its oldest queued frame, or pause its generation.",
)
@click.option("--max-session-s", default=600.0, show_default=True, type=click.FloatRange(min=1), help="Audio.")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option(
    "--shutdown-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0), help="Seconds to end streams."
)
@click.option(
    "--gather-frames", default=2, show_default=True, type=click.IntRange(min=1),
    help="Frames a stream makes at a time: fewer CPU seconds a frame, up to (n-1)/fps more latency.",
)  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), help="Torch threads.  [default: all cores but one]")
def serve(
    model_uri: str | None,
    host: str,
    port: int,
    token: str | None,
    token_file: Path | None,
    insecure_no_token: bool,
    allowed_origin: tuple[str, ...],
    max_sessions: int,
    max_sessions_per_client: int | None,
    queue_frames: int,
    backpressure: str,
    max_session_s: float,
    max_upload_mb: float,
    shutdown_timeout: float,
    gather_frames: int,
    threads: int | None,
) -> None:
    """Serve the model live: a web page, a WebSocket stream (speech in, frames out) and POST /v1/videos."""
    import signal
    import sys

    from talking_face.serving.server import LiveServer, ServerSettings, uvicorn_config
    from talking_face.serving.server.access import AccessTokens, is_loopback
    from talking_face.serving.video import default_threads

    if not (token or token_file or insecure_no_token or is_loopback(host)):
        raise click.ClickException(
            f"refusing to serve on {host} without an access token: set --token, TALKING_FACE_TOKEN or --token-file "
            "(or --insecure-no-token when a proxy with its own authentication is in front)"
        )
    try:
        AccessTokens(token or None, token_file)  # a token or token file that cannot be used: said before loading
        model, model_uri = resolve_model(model_uri)
    except (ValueError, OSError) as error:
        raise _fail(error) from None
    settings = ServerSettings(
        max_sessions=max_sessions, max_sessions_per_client=max_sessions_per_client, queue_frames=queue_frames,
        backpressure=backpressure, max_session_s=max_session_s, max_upload_bytes=int(max_upload_mb * 2**20),
        threads=threads or default_threads(), token=token or None, token_file=token_file,
        allowed_origins=allowed_origin, shutdown_timeout_s=shutdown_timeout, gather_frames=gather_frames,
    )  # fmt: skip
    config = uvicorn_config(model, settings, host, port, model_uri)
    access = "access token required" if token or token_file else "no access token"
    click.echo(f"talking-face live: http://{host}:{port}/ (model {model_uri}; {access})")
    # uvicorn raises SIGTERM again after its graceful stop; that stop is the planned end: exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    LiveServer(config).run()
