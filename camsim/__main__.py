"""`python -m camsim`: serve N simulated cameras until interrupted; `python -m camsim ctl ACTION CAMERA` breaks one."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from camsim.simulator import CameraSimulator, CameraSpec, SimulatorError

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "var" / "camsim"
ACTIONS = ("stop", "kill", "freeze", "thaw", "restart", "blackout", "corrupt")


def serve(args: argparse.Namespace) -> int:
    footages = args.footage or ["vtest", "bikes"]
    specs = [
        CameraSpec(f"cam-{i + 1}", footages[i % len(footages)], username=args.username, password=args.password)
        for i in range(args.cameras)
    ]
    state_dir: Path = args.dir
    state_dir.mkdir(parents=True, exist_ok=True)
    simulator = CameraSimulator(specs, cache_dir=state_dir, base_port=args.base_port)
    control_path = state_dir / "control.sock"
    control_path.unlink(missing_ok=True)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    control.bind(str(control_path))
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        simulator.start()
        cameras = [
            {"name": c.name, "footage": c.spec.footage, "main_url": c.main_url, "sub_url": c.sub_url}
            for c in simulator.cameras.values()
        ]
        state = {"pid": os.getpid(), "control": str(control_path), "cameras": cameras}
        (state_dir / "cameras.json").write_text(json.dumps(state, indent=2))
        sys.stdout.write(json.dumps(state) + "\n")
        sys.stdout.flush()
        control.settimeout(0.5)
        while not stopping:
            try:
                request, sender = control.recvfrom(1024)
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            reply = apply(simulator, request.decode(errors="replace"))
            if sender:
                control.sendto(reply.encode(), sender)
    finally:
        simulator.stop()
        control.close()
        control_path.unlink(missing_ok=True)
    return 0


def apply(simulator: CameraSimulator, request: str) -> str:
    """Run one control request "ACTION CAMERA"; answers "ok ..." or "error ..."."""
    parts = request.split()
    if len(parts) != 2 or parts[0] not in ACTIONS:
        return f"error: expected one of {', '.join(ACTIONS)} followed by a camera name"
    action, name = parts
    try:
        camera = simulator.camera(name)
        handlers = {"stop": camera.stop, "kill": camera.kill, "freeze": camera.freeze, "thaw": camera.thaw,
                    "restart": camera.restart, "blackout": camera.toggle_blackout,
                    "corrupt": camera.toggle_corruption}
        handlers[action]()
    except SimulatorError as exc:
        return f"error: {exc}"
    return f"ok {action} {name}"


def control(args: argparse.Namespace) -> int:
    control_path = args.dir / "control.sock"
    if not control_path.exists():
        sys.stderr.write(f"no simulator is running ({control_path} missing)\n")
        return 1
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
        client.bind(str(Path(tmp) / "reply.sock"))
        client.settimeout(30)
        client.sendto(f"{args.action} {args.camera}".encode(), str(control_path))
        reply = client.recv(1024).decode()
    sys.stdout.write(reply + "\n")
    return 0 if reply.startswith("ok") else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m camsim", description="Simulated RTSP cameras on real footage.")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="footage cache, logs and control socket")
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("serve", help="serve cameras until interrupted (the default)")
    for target in (parser, run):
        target.add_argument("--cameras", type=int, default=4)
        target.add_argument("--base-port", type=int, default=8554)
        target.add_argument("--footage", action="append", choices=["vtest", "bikes"],
                            help="footage per camera, cycled (default: vtest, bikes)")
        target.add_argument("--username")
        target.add_argument("--password")
    ctl = commands.add_parser("ctl", help="break or repair one running camera")
    ctl.add_argument("action", choices=ACTIONS)
    ctl.add_argument("camera")
    args = parser.parse_args(argv)
    try:
        if args.command == "ctl":
            return control(args)
        return serve(args)
    except SimulatorError as exc:
        sys.stderr.write(f"camsim: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
