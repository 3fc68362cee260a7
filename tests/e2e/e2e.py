"""What the end-to-end tests share: the list of failures, how a check reports, the tail of a
long stderr, and running a command with a timeout (a hang fails the test, never hangs it).
Each test imports what it uses: `from e2e import failures, fail, ok, check, tail, run`."""
import subprocess

failures = []


def fail(label, message):
    failures.append(f"[{label}] {message}")
    print(f"FAIL {label}: {message}", flush=True)


def ok(label, message=""):
    print(f"ok   {label}{': ' + message if message else ''}", flush=True)


def check(condition, message):
    """Records @message as a failure unless @condition; returns @condition."""
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)
    return condition


def tail(text, lines=15):
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def run(args, timeout=120, env=None):
    """Runs a command; returns CompletedProcess, or None after a timeout."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None
