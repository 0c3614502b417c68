"""The simulated arm as the ROS graph drives it, stepped in place on simulated time.

`EnvArm` steps the env once per action, as collection executed the demonstrations: the filter
ticks at the action rate and the arm is given one setpoint per 0.1 s. The graph does something
else: control_node's loop filters at its own rate (100 Hz) and sends each command as a
one-point trajectory over one period to sim_node's trajectory controller, whose physics runs
at 240 Hz and latches success as it happens. `GraphArm` is that execution without DDS or the
wall clock: the same `SimArm` sim_node runs, given what control_node sends, so an in-process
evaluation at control_node's rate measures what the graph does, minus its timing noise.
"""

from __future__ import annotations

import numpy as np

from robot_policy.eval.sampler import EpisodeArm
from robot_policy.sim.arm import SimArm

_EPS = 1e-9


class GraphArm(EpisodeArm):
    """One episode of `sim` (reset to `seed`) as an `Arm` ticked every `period` seconds;
    `done` once the task succeeds or `limit_s` of simulated time has passed (the graph's
    referee allows an episode the same time). `steps` counts the actions of `fps` elapsed."""

    def __init__(self, sim: SimArm, seed: int, period: float, fps: int, limit_s: float) -> None:
        sim.reset(seed)
        super().__init__(sim.observation())
        self.sim = sim
        self.period = period
        self.fps = fps
        self.limit_s = limit_s
        self._substeps = 0

    def send(self, command: np.ndarray, velocity: np.ndarray, now: float) -> None:
        """control_node's `joint_trajectory` output (stamp zero: start on receipt, one point a
        period ahead, with the filter's velocity), then physics up to the next tick."""
        self.executed.append(command.astype(np.float32))
        names = self.sim.controller_joints
        self.sim.accept_trajectory(
            names, 0.0, [self.period], [command.tolist()], [velocity.tolist()], now=now
        )
        end = now + self.period
        due = int(end / self.sim.physics_dt + _EPS)
        self.sim.advance(due - self._substeps, end)
        self._substeps = due
        steps = int(end * self.fps + _EPS)
        # Cameras at the policy's rate, as sim_node's frames (rendering is most of an image
        # episode's cost); between frames the newest one stands, as policy_node sees it.
        frames = steps > self.steps
        self._observed(end, {**self.observation, **self.sim.observation(render=frames)})
        self.steps = steps
        self.success = self.sim.succeeded
        self.done = self.success or end + _EPS >= self.limit_s
