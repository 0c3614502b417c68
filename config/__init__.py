"""The YAML configuration shipped with robot_policy (graphs, robots, safety, sim); a data
package so that `robot_policy.settings.config_path` finds it in any install."""
