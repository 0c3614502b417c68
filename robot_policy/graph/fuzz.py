"""`robot-policy bench fuzz`: a black-box safety campaign against control_node over DDS.

sim_node and control_node of the shipped graph run as processes on an isolated domain, as
`robot-policy up` starts them (`graph.referee.running_graph`; no policy_node). An injector in
this process sends seeded, mixed chunks (`fuzz_chunks`) on both chunk topics, engages the e-stop
now and then and clears it with /safety/reset; an observer in the same process records every
applied command and measured joint state, and judges them afterwards without the filter's code
(`fuzz_checks`). A `StallWitness` watches the machine meanwhile, so violations and deadline
misses during machine stalls are told from the software's own, exactly as `bench ros` does.

The chunks go out in segments of one kind, and each segment ends when control_node's next
/safety/status shows it received something after the last send: the counters' change is that
kind's (accepted, ignored, overridden, rejected; what the depth-1 chunk topic dropped is the
rest), and `last_rejection` its reason. control_node needs no /control/enable in between: an
e-stop holds the arm, /safety/reset clears it, and the next chunk moves the arm again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from tqdm import tqdm
from trajectory_msgs.msg import JointTrajectory

from robot_policy.graph.fuzz_checks import (
    Samples,
    TableClearance,
    Timeline,
    command_figures,
    speed_figures,
)
from robot_policy.graph.fuzz_chunks import KINDS, ChunkMaker, Segment, plan
from robot_policy.graph.referee import (
    STARTUP_TIMEOUT,
    GraphFailure,
    Referee,
    check_alive,
    loop_report,
    running_graph,
    stall_witness,
)
from robot_policy.graph.runner import DEFAULT_GRAPH, Graph, effective_parameters
from robot_policy.nodes.common import COMMAND_QOS, STATE_QOS, to_seconds
from robot_policy.nodes.parameters import ControlNodeParameters
from robot_policy.robots import load_robot
from robot_policy.runtime.stall_witness import overlaps
from robot_policy.safety import SafetyConfig
from robot_policy.settings import from_flat

NODES = ("sim_node", "control_node")
# Every state and command the nodes publish, however far this process's executor falls behind.
EVERY_MESSAGE = QoSProfile(
    depth=10_000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)
SETTLE = 0.1  # s after a segment's last send before a status may close it (DDS + a tick)
SEGMENT_TIMEOUT = 5.0  # s a segment may wait for control_node to report receiving anything
POLL = 0.01
COUNTERS = ("accepted", "ignored", "overridden", "rejected")  # one per chunk received
TABLE_POSES = 64  # targets below the table, drawn before the graph starts
REASON_CHARS = 160  # of each rejection reason kept (a spacing list can run to kilobytes)

# One JointState: stamp (node clock, s), positions, velocities.
Row = tuple[float, tuple[float, ...], tuple[float, ...]]


class FuzzReferee(Referee):
    """The referee plus the injector's e-stop and reset, and the observer's recordings."""

    def __init__(self, context: rclpy.Context) -> None:
        super().__init__(context)
        self.reset_safety = self.create_client(Trigger, "/safety/reset")
        self.e_stop = self.create_publisher(Bool, "/safety/e_stop", COMMAND_QOS)
        self.states: list[Row] = []
        self.commands: list[Row] = []
        self.state_names: list[str] = []
        self.command_time = -math.inf  # monotonic receipt of the newest command
        self.sim: dict[str, Any] = {}  # sim_node's newest /sim/status values
        self.create_subscription(DiagnosticArray, "/sim/status", self._on_sim, STATE_QOS)
        self.create_subscription(JointState, "/joint_states", self._on_state, EVERY_MESSAGE)
        self.create_subscription(JointState, "/control/command", self._on_command, EVERY_MESSAGE)

    def ready_clients(self) -> tuple:
        return (self.reset_sim, self.enable_control, self.reset_safety)

    def _on_sim(self, msg: DiagnosticArray) -> None:
        """Kept apart from `status`: its arrival must not count as control_node's."""
        self.sim = {kv.key: kv.value for kv in msg.status[0].values}

    def _on_state(self, msg: JointState) -> None:
        if not self.state_names:
            self.state_names = list(msg.name)
        self.states.append(_row(msg))

    def _on_command(self, msg: JointState) -> None:
        self.commands.append(_row(msg))
        self.command_time = time.monotonic()

    def current(self) -> np.ndarray | None:
        """The newest applied command, in action order."""
        return np.array(self.commands[-1][1]) if self.commands else None

    def control(self) -> dict[str, Any]:
        return self.status.get("control_node", {})


def _row(msg: JointState) -> Row:
    return to_seconds(msg.header.stamp), tuple(msg.position), tuple(msg.velocity)


def _received(control: Mapping[str, Any]) -> int:
    chunks = control.get("chunks", {})
    return sum(chunks.get(k, 0) for k in COUNTERS)


def _wait(
    graph: Graph, log: str, condition: Callable[[], object], timeout: float, what: str
) -> None:
    """Poll `condition` until true; GraphFailure naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        check_alive(graph, log)
        if time.monotonic() > deadline:
            raise GraphFailure(f"no {what} after {timeout} s; see {log}")
        time.sleep(POLL)


class Campaign:
    """Sends the plan's segments and books control_node's counters per kind."""

    def __init__(self, graph: Graph, referee: FuzzReferee, log: str, maker: ChunkMaker) -> None:
        self.graph, self.referee, self.log, self.maker = graph, referee, log, maker
        self.kinds: dict[str, dict[str, Any]] = {}
        self.windows: list[tuple[float, float, str]] = []  # (start, booked, kind): a Timeline
        self.e_stops = 0

    def run(self, segments: list[Segment], topics: tuple[str, str], progress: bool) -> None:
        ref = self.referee
        publishers = {t: ref.create_publisher(JointTrajectory, t, COMMAND_QOS) for t in topics}
        for topic, pub in publishers.items():
            _wait(
                self.graph,
                self.log,
                lambda pub=pub: pub.get_subscription_count() > 0,
                STARTUP_TIMEOUT,
                f"subscriber on {topic}",
            )
        before = ref.control()
        bar = tqdm(
            total=sum(s.count for s in segments),
            desc="bench fuzz",
            unit="chunk",
            disable=not progress,
        )
        for segment in segments:
            began, last = self._send(segment, publishers)
            before = self._book(segment, before, last, last - began)
            self.windows.append((began, time.monotonic(), segment.kind.name))
            bar.update(segment.count)
        bar.close()

    def _send(self, segment: Segment, publishers: Mapping[str, Any]) -> tuple[float, float]:
        """Publish the segment at its kind's pace; (first, last) send times, monotonic."""
        if segment.kind.e_stop:
            self.referee.e_stop.publish(Bool(data=True))
            self.e_stops += 1
        began = due = time.monotonic()
        for topic in segment.topics:
            if (ahead := due - time.monotonic()) > 0:
                time.sleep(ahead)
            publishers[topic].publish(segment.kind.make(self.maker, time.time()))
            due += segment.kind.interval
        last = time.monotonic()
        if segment.kind.e_stop:
            reply = self.referee.call(self.referee.reset_safety, Trigger.Request())
            if not reply.success:
                raise GraphFailure(f"/safety/reset refused: {reply.message}")
        return began, last

    def _book(
        self, segment: Segment, before: Mapping[str, Any], last: float, seconds: float
    ) -> dict[str, Any]:
        """Wait for a status after the segment showing something received (the last chunk of a
        segment always arrives: the topic is reliable), then book the counters' change."""
        ref = self.referee
        deadline = time.monotonic() + SEGMENT_TIMEOUT
        while True:
            check_alive(self.graph, self.log)
            control = ref.control()
            fresh = ref.status_time > last + SETTLE
            if fresh and _received(control) > _received(before):
                break
            if time.monotonic() > deadline:
                if not fresh:
                    raise GraphFailure(f"no /safety/status for {SEGMENT_TIMEOUT} s; see {self.log}")
                break  # nothing of this segment arrived: booked as dropped
            time.sleep(POLL)
        name = segment.kind.name
        book = self.kinds.setdefault(
            name, {"sent": 0, **dict.fromkeys(COUNTERS, 0), "seconds": 0.0, "reasons": []}
        )
        book["sent"] += segment.count
        book["seconds"] += seconds
        old, new = before.get("chunks", {}), control.get("chunks", {})
        for k in COUNTERS:
            book[k] += new.get(k, 0) - old.get(k, 0)
        reason = str(control.get("last_rejection", "")).split(": ", 1)[-1]
        if new.get("rejected", 0) > old.get("rejected", 0) and reason not in book["reasons"]:
            book["reasons"] = [*book["reasons"], reason[:REASON_CHARS]][-3:]
        return control

    def per_kind(self) -> dict[str, dict[str, Any]]:
        """Per kind: sent, the counters, dropped (sent - received), send rate, reasons."""
        out = {}
        for name, book in sorted(self.kinds.items()):
            received = sum(book[k] for k in COUNTERS)
            rate = book["sent"] / book["seconds"] if book["seconds"] > 0 else math.nan
            out[name] = {
                "expect": KINDS[name].expect,
                "sent": book["sent"],
                **{k: book[k] for k in COUNTERS},
                "dropped": book["sent"] - received,
                "send_rate_hz": round(rate, 1),
                "reasons": book["reasons"],
            }
        return out


def run(
    chunks: int = 10_000,
    seed: int = 0,
    task: str = "push",
    progress: bool = True,
    log_path: str | Path | None = None,
) -> dict[str, Any]:
    """The campaign; a flat dict of figures plus per-kind counts (`kinds`). `task` sets the
    sim's scene (push and lift have a cube the arm may hit: the filter does not know it)."""
    wall = time.monotonic()
    overrides = {"sim_node": {"seed": seed, "task": task}}
    table = effective_parameters(DEFAULT_GRAPH, overrides)["control_node"]
    params = from_flat(ControlNodeParameters, {k: v["value"] for k, v in table.items()})
    safety = (
        SafetyConfig.from_yaml(params.safety_config)
        if params.safety_config
        else SafetyConfig.for_robot(params.robot)
    )
    robot = load_robot(params.robot)
    topics = (params.chunk_topic, params.teleop_topic)
    rng = np.random.default_rng(seed)
    segments = plan(chunks, rng, topics)
    with TableClearance(robot) as clearance:
        below = clearance.poses_below(rng, robot, TABLE_POSES)
        offset = time.time() - time.monotonic()  # node stamps -> the witness's monotonic clock
        with running_graph(overrides, log_path=log_path, referee_type=FuzzReferee, nodes=NODES) as (
            graph,
            referee,
            log,
        ):
            assert isinstance(referee, FuzzReferee)
            maker = ChunkMaker(rng, robot, params.chunk_limits(), referee.current, below)
            maker.huge(0.0)  # serialized now, not inside its segment
            _wait(
                graph,
                log,
                lambda: referee.states and referee.commands and referee.control(),
                STARTUP_TIMEOUT,
                "joint states, commands and /safety/status",
            )
            campaign = Campaign(graph, referee, log, maker)
            with stall_witness(overrides) as witness:
                began = time.monotonic()
                campaign.run(segments, topics, progress)
                ended = time.monotonic()
                # Still alive and commanding (GraphFailure otherwise): a command and a status
                # from after the campaign.
                _wait(
                    graph,
                    log,
                    lambda: referee.command_time > ended and referee.status_time > ended,
                    3.0,
                    "command and status after the campaign",
                )
                stalls = witness.stalls()
            control = referee.control()
            states, commands = list(referee.states), list(referee.commands)
            joints = referee.state_names
        when = Timeline(stalls, campaign.windows)
        measured = Samples.of([(t - offset, q, v) for t, q, v in states])
        applied = Samples.of([(t - offset, q, v) for t, q, v in commands])
        table_figures = clearance.figures(measured, joints, when)
    loop = loop_report(control, stalls)
    return {
        "chunks_sent": sum(s.count for s in segments),
        "seed": seed,
        "task": task,
        **command_figures(
            applied, safety.joint_limits(), robot.command_names, 1.0 / params.rate_hz, when
        ),
        **speed_figures(measured, joints, robot, when),
        **table_figures,
        "deadline_misses": loop.get("deadline_misses", math.nan),
        "own_deadline_misses": loop["own_deadline_misses"],
        "misses_in_machine_stalls": loop["misses_in_machine_stalls"],
        "machine_stalls": loop["machine_stalls"],
        "own_misses_by_kind": when.by_kind(
            begin
            for begin, end in control.get("loop", {}).get("miss_times", [])
            if not overlaps(stalls, begin, end)
        ),
        "loop_hz": loop.get("rate_hz", math.nan),
        "jitter_ms_p99": loop.get("jitter_ms_p99", math.nan),
        "e_stops": campaign.e_stops,
        # Substeps sim_node dropped after late ticks: its motors then see the setpoint jump.
        "sim_lost_physics_steps": int(referee.sim.get("lost_physics_steps", -1)),
        "status_chunks": control.get("chunks", {}),
        "status_reasons": control.get("reasons", {}),
        "kinds": campaign.per_kind(),
        "campaign_s": round(ended - began, 1),
        "wall_s": round(time.monotonic() - wall, 1),
    }
