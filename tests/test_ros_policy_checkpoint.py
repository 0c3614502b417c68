"""policy_node refuses, at start-up and with the reason, a checkpoint the robot cannot feed."""

from __future__ import annotations

from conftest import wait_for

from robot_policy.graph.runner import DEFAULT_GRAPH, Graph
from robot_policy.policies import FlowConfig, make_policy, save_policy


def test_a_checkpoint_whose_state_the_robot_cannot_give_is_refused_at_start_up(
    tmp_path, isolated_ros_env
):
    config = FlowConfig(
        action_dim=8,
        state_keys=("observation.state",),
        state_dims=(9,),  # the arm's joint state is 7 joints + the gripper: 8
        down_dims=(32, 64),
        horizon=8,
        n_action_steps=4,
    )
    checkpoint = save_policy(make_policy(config), tmp_path / "ckpt")
    log_path = tmp_path / "graph.log"
    with open(log_path, "w") as log:
        overrides = {"policy_node": {"checkpoint": str(checkpoint)}}
        graph = Graph(DEFAULT_GRAPH, overrides, only=["policy_node"], env=isolated_ros_env, log=log)
        graph.start()
        try:
            exited = wait_for(graph.exited, 60.0, "policy_node to exit")
        finally:
            graph.stop()
    assert exited[0] == "policy_node" and exited[1] != 0, exited
    assert "observation.state has 9 dims, the robot's joint state gives 8" in log_path.read_text()
