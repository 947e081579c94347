"""CenterNet detection pieces: training targets (``targets``), loss graph (``loss``), numpy decoding (``decode``)."""
from .decode import decode, decode_image
from .loss import LOSS_WEIGHTS, centernet_losses, focal_loss, masked_l1_loss
