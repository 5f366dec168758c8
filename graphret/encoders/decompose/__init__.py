"""Decomposing encoder (Kobayashi et al., ML4H 2020): a normal code and an abnormal code.

One encoder turns an image into two latent maps, each vector-quantised with its own codebook:

* the **abnormal map** feeds a *segmentation decoder*, whose logits mark where (and, with one
  channel per finding, which) abnormality is;
* the **normal map** feeds an *image decoder* that reconstructs the image, its normalisation
  layers modulated by the segmentation decoder's logits (SPADE, Park et al. 2019: parameter-free
  batch normalisation, then a per-pixel scale and shift computed from the conditioning map).
  The decoder is conditioned on the positive part of the logits, ``relu(logits)``: the evidence
  of abnormality, zero wherever the segmentation decoder sees none.  Zeroing it therefore
  asks for the image as it would look without its abnormality: the *normal-appearing*
  reconstruction (:meth:`DecomposingEncoder.normal_appearing`).

Losses (weights are options):

* **latent**: VQ-VAE's codebook and commitment losses, ``|sg[z] - e|^2 + beta |z - sg[e]|^2``
  (``vq="loss"``), or the commitment loss alone with the codebook updated as exponential
  moving averages of the encoder outputs assigned to each entry (``vq="ema"``, the default);
* **discrimination** (is there an abnormality, and which): a head on the abnormal map gives
  each cell a feature vector (a 1x1 convolution of its codebook entry) and from it a logit per
  target; an image's logits are the cells' smooth maximum (log-mean-exp), trained on the
  image-level labels (binary cross-entropy per finding for multi-label sets, positives
  weighted by the negative / positive ratio; abnormal vs normal for two classes; cross-entropy
  over the classes, from max-pooled cell features, for more; with one mask channel per
  finding the image-level logits come from the segmentation decoder instead, see
  Architecture).  Items without a mask also get
  a multiple-instance term: the segmentation logits' smooth maximum over the image must say
  whether the image is abnormal (not when that smooth maximum is the detector: labels only,
  one normal-vs-abnormal target, where the label loss already trains it);
* **segmentation**: binary cross-entropy plus soft Dice (pooled over the batch, so that a
  small, rare finding's few pixels count; per channel, weighted by the channel's share of
  foreground pixels to the power -1/2, normalised to mean 1 and clipped to [1/4, 4], so that
  a finding of a few pixels weighs more than one covering half the image:
  :func:`~graphret.encoders.decompose.losses.class_weights`) between the segmentation logits
  and the masks, for items with a mask; and, when the mask channels are the labels (or the label is
  one abnormal flag), binary cross-entropy between the discrimination head's cell logits and
  the masks max-pooled to the abnormal map's cells (positives weighted 10): the head learns
  which cells hold which finding, not only that the image holds it somewhere (on the demo set
  image-level labels alone left small nodules at chance);
* **reconstruction**: mean squared error between the conditioned reconstruction and the input;
* **residual** between the two decoders' outputs: the normal-appearing reconstruction may
  differ from the input only where the image is abnormal: its squared error counts outside
  the (dilated) mask, over the whole image for images labelled normal, and, for abnormal
  images without a mask, outside the segmentation decoder's own (detached) abnormality map;
* **independence** (our addition; ``independence_weight``, 20): the maximum mean discrepancy
  between the normal codes (centred, unit rows) of the batch's abnormal and normal items
  without a mask, through the normal branch's own layers as the adversary: the two groups'
  normal codes must be spread alike, so that a normal code's neighbours do not tell whether
  it is abnormal (with masks the residual term already says what the normal code must drop,
  and the term is 0).  On PneumoniaMNIST the adversary alone left the disease in the normal
  code (its loss fell below the detector's; a linear probe on the normal code had test AUC
  0.92, the detector's own 0.93), and its strength did not matter (weights 1-10: +0.19 to +0.21
  above the base rate); the independence term took it to +0.094 / +0.093 (seeds 0 / 1, weight 10) with the
  adversary beside it; with the segmentation decoder's context blocks weight 10 left +0.094 / +0.117 and 20
  gives +0.084 / +0.089 (goal <= +0.10), the abnormal code's P@10 0.853 / 0.856;
* **adversary** (our addition; ``adversary_weight=0`` turns it off): a head on the normal
  code tries to predict the same labels through a gradient-reversal layer, so that the normal
  branch is pushed to leave the labels out.  Nothing else in the objective stops the encoder
  from copying the abnormality into the normal code too.  The adversary sees the normal code
  recomputed from the shared trunk's output with its gradient stopped: reversing the gradient
  into the shared trunk would erase the findings from the abnormal branch as well (on the demo
  set that halved what the abnormal code knew of small findings).

Training runs in two stages: ``vq_warmup`` (a quarter) of the epochs without quantisation, so
that the encoder first learns maps in which a small finding's cells stand apart; then each
codebook starts from k-means++ on the encoder's outputs for up to 1,024 training images (a rare
kind of cell gets an entry of its own, where random starts give every entry to the common
background) and the whole objective trains with quantised codes.  Entries that fall out of use
restart on the batch's worst-represented outputs.  The best validation epoch of the second
stage is kept (``select_epoch``): by default, with one mask channel per finding, the epoch whose
held-out share of images with the whole finding set decided right is best (at the held-out
items' own accuracy-best cuts), else the one with the lowest total loss.

Supervision (``supervision``): ``"masks"`` when the training set carries masks
(``ImageSet.masks``, e.g. the demo set's finding masks or :mod:`graphret.data.masks`), the full
objective; ``"labels"`` with image-level labels only (normal vs abnormal, or findings), where
the discrimination term's multiple-instance part replaces segmentation: the segmentation
decoder then has one channel, learns to mark whatever separates abnormal from normal images,
and the image decoder learns where the abnormality is only from that; ``"auto"`` picks masks
when any training item has one.  Image-level labels are needed in both cases (with masks only,
the labels are read off the masks: an item is abnormal in channel c when its mask has any of c).

Code spaces (unit rows; the normal space is centred on the training items' mean unit code and
normalised again, as the DAE's):

* ``normal``: the quantised normal map, flattened (``latent_dim x side x side``: where things
  are matters for anatomy), with the directions that predict the labels projected out
  (iterative null-space projection, Ravfogel et al. 2020: ``null_directions`` rounds of ridge
  regressions of the labels on the training items' codes, each round's directions removed;
  what the adversary left in linearly);
* ``abnormal`` with one mask channel per finding (``masks`` supervision whose channels are the
  targets, e.g. the demo's findings), or with labels only and one normal-vs-abnormal target
  (PneumoniaMNIST: one "finding", so two entries, normal and abnormal), and at most 8 findings (``MAX_SET_CODE_FINDINGS``): a
  **finding-set code**, one entry per set of findings (32 for the demo's 5): the probability of
  exactly that set when each finding is present with its soft presence ``sigmoid(4 (z - t))``
  (``PRESENCE_SHARPNESS``) of its image-level logit ``z`` (the segmentation channel's smooth
  maximum, averaged with the mirror image's) against its decision logit ``t``.  The decision
  logit of each finding is where the accuracy on the held-out split is best
  (:mod:`~graphret.encoders.decompose.calibration`; ``log(pos_weight)``, which undoes the
  positives' weighting of training, when the split has too few of a finding).  Two images sure
  of the same findings, wherever they sit, have cosine near 1; of different sets near 0, even
  when the sets share findings; among images with the same decided findings the surer ones
  come first.  With more findings, the per-finding code: per finding its soft presence, then
  the segmentation decoder's last features averaged under the finding's predicted mask (a
  unit vector times 0.3, ``FINDING_FEATURE_WEIGHT``) when the presence passes
  ``abnormal_gate`` (0.5: ``z > t``), zeros otherwise; then ``1 - max presence`` (no finding).
* ``abnormal`` otherwise (labels only with several targets, or masks that are not the targets): the features of
  the abnormal map's cells that the discrimination head finds
  abnormal (probability above ``abnormal_gate``, 0.5, with the positive-class weighting of
  training undone, so that the gate means the same on a set where abnormal images are rare
  (the demo's findings) and on one where they are the majority (PneumoniaMNIST)), max-pooled
  over the cells, plus a feature that is 1 when no cell is (65): which abnormality, wherever it
  sits, and nothing from the cells that look normal, so that every image without an abnormal
  cell gets the same code.  On the demo set a soft weighting by the probability left the
  anatomy in the code (P@10 on anatomy 0.49 against 0.27 with a gate, findings 0.44 and 0.45);
* ``both``: ``[normal, abnormal] / sqrt(2)``, unit length; its cosine is the mean of the two
  spaces' cosines;
* ``default`` = ``both`` (the same array): the graph and its communities should reflect the
  whole image, as every other encoder's default does, and a composite query
  (:func:`composite_code`) lives in the ``both`` space, so the graph's region and probe modes can
  answer it; the ``normal`` and ``abnormal`` spaces serve queries that focus on one part.

Architecture (sized for a CPU): stride-2 convolution blocks (32, 64, 128 channels times
``width / 32``) until the map is at most 8 px (28 px -> 7, 64 px -> 8); the normal map comes
from the last block, the abnormal map from the one before (twice the side: 14 px at 28 px,
16 px at 64 px, so that a small finding keeps cells of its own), each through a 3x3
convolution block and a 1x1 convolution to ``latent_dim`` channels; decoders mirror the
encoder at half its widths (image and segmentation decoders) with nearest-neighbour
up-sampling and 3x3 convolutions up to half the image size, then a last up-sampling and the
output convolution (the image decoder with SPADE at every level); a sigmoid gives the image
in [0, 1].  The segmentation decoder is a U-Net: from the abnormal map, each level
up-samples to the side of the next shallower trunk output and reads it (skip connection),
and its last level runs at full size on a full-size stem (one 3x3 block on the input), so
that a finding of a few pixels (the demo's calcification dots, 1 px across) is segmented at
the resolution it is drawn at (at the abnormal map's 16 px it covered a quarter of a cell).
Before that last level, ``seg_context`` residual 3x3 blocks dilated 2, 4, ... (by default 2 when
the mask channels are the findings) widen the decoder's view (a pixel's logit reads pixels up to 27 px
away instead of 15 at 64 px), so that a small finding can be told from a look-alike (the
demo's missed nodules sat on fingers and kidneys).
With one mask channel per finding (or labels only and one normal-vs-abnormal target, whose
one segmentation channel then is that target's), the image-level detection of each finding is its
segmentation channel's smooth maximum (log-mean-exp, sharpness 8) times a learned scale plus
a bias, trained with the discrimination term: the detector and the segmentation agree.  When
training flipped the images, the detector's logits at encoding time are the mean of each
image's and its left-right mirror image's (``NetSpec.mirror_average``); with finding masks
also of both shifted by one pixel down, right and both (``shift_average``: 8 views, the phases of
the trunk's first stride-2 block), which on the demo lifted the share of test images whose whole
finding set is decided right from 0.793 / 0.822 to 0.812 / 0.847 (seeds 0 / 1) for about 5x
the encoding CPU.  Training's per-epoch held-out score reads the 2 unshifted views.
"""

# the package's names, as the single module had them (the private helpers too: tests use them)
from graphret.encoders.decompose.codes import SPACES as SPACES
from graphret.encoders.decompose.codes import (
    composite_code,
    composite_from_both,
    split_both,
)
from graphret.encoders.decompose.encoder import NORMAL_NAMES as NORMAL_NAMES
from graphret.encoders.decompose.encoder import DecomposingEncoder
from graphret.encoders.decompose.options import SUPERVISION as SUPERVISION
from graphret.encoders.decompose.options import VQ_UPDATES as VQ_UPDATES
from graphret.encoders.decompose.options import DecomposeOptions
from graphret.encoders.decompose.losses import CELL_POS_WEIGHT as CELL_POS_WEIGHT
from graphret.encoders.decompose.losses import LSE_SHARPNESS as LSE_SHARPNESS
from graphret.encoders.decompose.losses import _kmeans_pp as _kmeans_pp
from graphret.encoders.decompose.losses import _lme_pool as _lme_pool
from graphret.encoders.decompose.losses import _nearest as _nearest
from graphret.encoders.decompose.losses import _soft_dice as _soft_dice
from graphret.encoders.decompose.losses import class_weights as class_weights
from graphret.encoders.decompose.spec import ABNORMAL_FEATURES as ABNORMAL_FEATURES
from graphret.encoders.decompose.spec import DISC_SHARPNESS as DISC_SHARPNESS
from graphret.encoders.decompose.spec import FINDING_FEATURE_WEIGHT as FINDING_FEATURE_WEIGHT
from graphret.encoders.decompose.spec import PRESENCE_SHARPNESS as PRESENCE_SHARPNESS

__all__ = ["DecomposeOptions", "DecomposingEncoder", "composite_code", "composite_from_both", "split_both"]
