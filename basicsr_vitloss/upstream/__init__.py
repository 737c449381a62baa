"""``basicsr-vitloss-upstream``: the paper's method as a pull request to BasicSR itself.

It writes into a BasicSR source checkout the files of one pull request, in BasicSR's layout and style,
generated from this package's own modules (never a hand-kept copy):

- ``compat``: source edits a BasicSR tree needs to import and train on current torch / torchvision /
  SciPy / Python (the modules ``basicsr_vitloss_startup.LEGACY_MODULES`` supplies at run time),
  applied only where the tree still has the problem;
- ``method``: the ViT perceptual losses (``basicsr/losses/vit_perceptual_loss.py``), PSNRLoss, the
  MIT-licensed NAFNet and Uformer, the progressive / gradient-clipping model, and BasicSR options for
  the GoPro experiments under ``options/{train,test}/TransformerPerceptualLoss/``;
- ``dpdd``: the DPDD dataset, DPDNet and the DPDD options of the networks the bundle contains.

Code under a non-commercial licence (Restormer, MPRNet) is never written. Every options file it writes
uses only keys that the target tree's own code reads (``allowed_keys``).
"""
SCOPES = ('compat', 'method', 'dpdd')
