"""LeRobot's feature names, spelled once: the sim, the recorder, the importer and the policy node
all read or write the same columns."""

STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGE_PREFIX = "observation.images."
IMAGE_KEY = IMAGE_PREFIX + "{}"  # .format(camera name)
ACTION_KEY = "action"
