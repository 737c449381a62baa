"""Mixed precision and micro-batches in BasicSR's training step, for SRModel and every model built on it
(ProgressiveSRModel / ImageCleanModel, ImageRestorationModel, MultiStageModel).

BasicSR 1.4.2's step is one forward, one backward, one optimizer step in float32. With::

    train:
      mixed_precision: bf16            # bf16 | fp16 | null: autocast for the forward and the losses
      micro_batches: 2                 # or [4, 2, 2, 1, 1, 1]: one entry per progressive stage
    val:
      mixed_precision: bf16            # autocast for the validation forward

each iteration's loaded batch is split into N equal chunks processed one after another, their
gradients accumulated (each chunk's loss divided by N, so for mean-reduced losses the update is the
unsplit batch's), then one optimizer step: peak memory is one chunk's. Iterations, schedules and the
log keep their meaning (logged losses are the means over the chunks). Under DDP the gradient
all-reduce waits for the last chunk (``no_sync``). Pixel losses are computed in float32 on the
float32 output; perceptual losses run under autocast (the ViT losses compute their distances in
float32 themselves). fp16 uses a gradient scaler: gradients are unscaled explicitly before the
optimizer step (so the clip of ``use_grad_clip`` inside it sees true gradients, fused Adam / AdamW
included) and steps with inf / NaN gradients are skipped, as torch.amp does; a skipped step leaves net_g
and its EMA unchanged, while the LR schedule still advances once per iteration as BasicSR's does. The
scaler's state is saved in the training states and restored on resume (it rides in ``schedulers``, so
BasicSR's own save / resume code carries it); resuming a state saved with another fp16 setting fails with
an error naming ``train: mixed_precision``. Without these keys the step is BasicSR's, unchanged.
"""
import contextlib
from collections import OrderedDict

import torch

from basicsr_vitloss.compat import basicsr_feature, replace

PRECISIONS = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def parse_precision(value, key):
    """torch dtype for ``bf16`` / ``fp16``, None for null / false; ValueError naming ``key`` otherwise."""
    if value in (None, False, 'null', 'none', 'fp32'):
        return None
    if value not in PRECISIONS:
        raise ValueError(f"{key} must be one of {', '.join(PRECISIONS)} or null, got {value!r}.")
    return PRECISIONS[value]


def autocast(device, dtype):
    """torch.autocast for ``device`` with ``dtype``, or a null context when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class GradScalerState:
    """The fp16 gradient scaler, shaped like an LR scheduler so that BasicSR's training states save and
    restore it (``schedulers`` are saved with ``state_dict`` and loaded with ``load_state_dict``;
    ``step`` is called once per iteration and does nothing here)."""

    def __init__(self, device):
        self.scaler = torch.amp.GradScaler(device.type)

    def step(self, *args, **kwargs):
        pass

    def state_dict(self):
        return {'grad_scaler': self.scaler.state_dict()}

    def load_state_dict(self, state):
        if 'grad_scaler' not in state:
            raise ValueError('The training state has no fp16 gradient-scaler state where this run (train: '
                             'mixed_precision: fp16) expects it: it was saved with other mixed_precision settings.')
        self.scaler.load_state_dict(state['grad_scaler'])


def check_resume_precision(model, resume_state):
    """Raise a ValueError naming ``train: mixed_precision`` when ``resume_state`` was saved with the fp16
    gradient scaler and this model has none, or the other way round (BasicSR would stop at its
    'Wrong lengths of schedulers' assertion). bf16 and float32 states resume into each other."""
    saved = sum(isinstance(s, dict) and 'grad_scaler' in s for s in resume_state.get('schedulers') or ())
    here = sum(isinstance(s, GradScalerState) for s in getattr(model, 'schedulers', ()))
    if saved == here:
        return
    precision = (model.opt.get('train') or {}).get('mixed_precision') or 'null'
    if saved:
        when = 'was saved with train: mixed_precision: fp16 (it holds the gradient scaler\'s state)'
        setting = 'fp16'
    else:
        when = 'was saved without the fp16 gradient scaler (train: mixed_precision: bf16 or null)'
        setting = 'bf16 or null'
    raise ValueError(f'The training state (iteration {resume_state.get("iter")}) {when}, but this run has '
                     f'train: mixed_precision: {precision}. Resume with mixed_precision: {setting}, or start a '
                     'new run from the saved network (path: pretrain_network_g) to change it.')


def grad_scaler(model):
    """The model's GradScaler when it trains in fp16, else None."""
    for scheduler in getattr(model, 'schedulers', ()):
        if isinstance(scheduler, GradScalerState):
            return scheduler.scaler
    return None


def micro_batch_count(model, current_iter, batch):
    """N for this iteration (``train: micro_batches``, per stage when a list), checked to divide ``batch``."""
    value = (model.opt.get('train') or {}).get('micro_batches', 1) or 1
    where = 'train:micro_batches'
    if isinstance(value, (list, tuple)):
        schedule = getattr(model, 'schedule', None)
        if schedule is None or len(value) != len(schedule.ends):
            stages = len(schedule.ends) if schedule is not None else 0
            raise ValueError(f'{where} is a list ({list(value)}): it needs one entry per progressive stage '
                             f'(datasets:train:iters has {stages} stage(s)).')
        value = value[schedule.stage(current_iter)]
        where += f' (stage {schedule.stage(current_iter) + 1})'
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{where} must be a positive integer, got {value!r}.')
    if batch % value:
        raise ValueError(f'{where} = {value} does not divide the batch of {batch} images: each chunk must hold '
                         f'the same number of images (choose a divisor of {batch}).')
    return value


def _float32(output):
    if isinstance(output, (list, tuple)):
        return [o.float() for o in output]
    return output.float()


def compute_losses(model, output, gt):
    """SRModel's losses on one (chunk of a) batch: (total, OrderedDict of named parts). Pixel losses in
    float32 outside autocast; perceptual losses as they come."""
    total, losses = 0, OrderedDict()
    if model.cri_pix:
        with torch.autocast(device_type=gt.device.type, enabled=False):
            l_pix = model.cri_pix(_float32(output), gt.float())
        total = total + l_pix
        parts = getattr(model.cri_pix, 'last_parts', None)  # MultiStageModel: l_pix and l_edge
        if parts is not None:
            model.cri_pix.last_parts = None
            losses.update(parts)
        else:
            losses['l_pix'] = l_pix
    if model.cri_perceptual:
        l_percep, l_style = model.cri_perceptual(output, gt)
        if l_percep is not None:
            total = total + l_percep.float()
            losses['l_percep'] = l_percep
        if l_style is not None:
            total = total + l_style.float()
            losses['l_style'] = l_style
    return total, losses


def scaled_step(scaler, optimizer):
    """``scaler.step(optimizer)`` and ``scaler.update()`` with the gradients unscaled first; True when the
    scaler skipped the step (inf / NaN gradients).

    The explicit ``unscale_`` is what makes a clip inside ``optimizer.step`` (``use_grad_clip``) see true
    gradients: ``GradScaler.step`` unscales by itself only for optimizers without their own AMP handling,
    and hands fused Adam / AdamW (``_step_supports_amp_scaling``) the scaled gradients for the kernel to
    unscale. After ``unscale_`` it passes them no scale (no second unscale) and the inf flag found here,
    so the kernel still skips a step with infs. The scale drops (``backoff_factor`` < 1) exactly when
    infs were found: that is how a skipped step is told, through the public API.
    """
    scaler.unscale_(optimizer)
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    skipped = scaler.get_scale() < scale
    if skipped:
        # The scaler's skip is this iteration's step: BasicSR's schedules count iterations and step on every
        # one. torch's LR schedulers warn ("lr_scheduler.step() before optimizer.step()") when their first
        # step comes before any optimizer.step ran, which a skipped first fp16 step makes a false alarm;
        # the flag is the one their own wrapper of optimizer.step sets.
        optimizer._opt_called = True
    return skipped


def _chunks(tensor, count):
    return tensor.chunk(count) if count > 1 else (tensor,)


def optimize_parameters(model, current_iter):
    """One iteration: forward / losses / backward per chunk under autocast, one (scaled) optimizer step."""
    dtype = parse_precision((model.opt.get('train') or {}).get('mixed_precision'), 'train:mixed_precision')
    count = micro_batch_count(model, current_iter, model.lq.shape[0])
    scaler = grad_scaler(model)
    model.optimizer_g.zero_grad()
    net = model.net_g
    outputs, sums = [], OrderedDict()
    lq_chunks, gt_chunks = _chunks(model.lq, count), _chunks(model.gt, count)
    for index, (lq, gt) in enumerate(zip(lq_chunks, gt_chunks)):
        last = index == count - 1
        sync = net.no_sync() if not last and hasattr(net, 'no_sync') else contextlib.nullcontext()
        with sync:
            with autocast(lq.device, dtype):
                output = net(lq)
                total, losses = compute_losses(model, output, gt)
            total = total / count
            (scaler.scale(total) if scaler is not None else total).backward()
        outputs.append(output[0].detach() if isinstance(output, (list, tuple)) else output.detach())
        for name, value in losses.items():
            sums[name] = sums.get(name, 0) + value.detach().float() / count
    skipped = False
    if scaler is not None:
        skipped = scaled_step(scaler, model.optimizer_g)
    else:
        model.optimizer_g.step()
    model.output = (torch.cat(outputs) if len(outputs) > 1 else outputs[0]).float()
    model.log_dict = model.reduce_loss_dict(sums)
    if model.ema_decay > 0 and not skipped:
        model.model_ema(decay=model.ema_decay)


def needs_training_step(train_opt):
    return bool(train_opt.get('mixed_precision')) or (train_opt.get('micro_batches') or 1) != 1


@basicsr_feature('training_step', replaces=('basicsr.models.sr_model.SRModel.optimize_parameters',
                                             'basicsr.models.sr_model.SRModel.init_training_settings',
                                             'basicsr.models.sr_model.SRModel.test',
                                             'basicsr.models.sr_model.SRModel.resume_training'))
def enable_training_step():
    """Route SRModel's training step (and every model inheriting it) through ``optimize_parameters``
    when the options ask for mixed precision or micro-batches; add the fp16 scaler; autocast validation
    with ``val: mixed_precision``; check on resume that the state has the scaler exactly when the run
    needs one. Once per process."""
    from basicsr.models.sr_model import SRModel
    original_step, original_init, original_test = (SRModel.optimize_parameters, SRModel.init_training_settings,
                                                   SRModel.test)
    original_resume = SRModel.resume_training  # BaseModel's

    def step(self, current_iter):
        if not needs_training_step(self.opt.get('train') or {}):
            return original_step(self, current_iter)
        return optimize_parameters(self, current_iter)

    def init_training_settings(self):
        train_opt = self.opt.get('train') or {}
        dtype = parse_precision(train_opt.get('mixed_precision'), 'train:mixed_precision')
        if (train_opt.get('micro_batches') or 1) != 1:
            micro = train_opt['micro_batches']
            if not isinstance(micro, (int, list, tuple)) or isinstance(micro, bool):
                raise ValueError(f'train:micro_batches must be a positive integer or a list of them, got {micro!r}.')
        original_init(self)
        if dtype == torch.float16:
            self.schedulers.append(GradScalerState(self.device))
        if needs_training_step(train_opt):
            from basicsr.utils import get_root_logger
            get_root_logger().info(f"Training step: mixed_precision {train_opt.get('mixed_precision') or 'off'}, "
                                   f"micro_batches {train_opt.get('micro_batches') or 1}.")

    def test(self):
        dtype = parse_precision((self.opt.get('val') or {}).get('mixed_precision'), 'val:mixed_precision')
        with autocast(self.device, dtype):
            original_test(self)
        if dtype is not None and torch.is_tensor(getattr(self, 'output', None)):
            self.output = self.output.float()

    def resume_training(self, resume_state):
        check_resume_precision(self, resume_state)
        return original_resume(self, resume_state)

    for function, original in ((step, original_step), (init_training_settings, original_init), (test, original_test),
                               (resume_training, original_resume)):
        function.__doc__ = original.__doc__
    replace(SRModel, 'optimize_parameters', step)
    replace(SRModel, 'init_training_settings', init_training_settings)
    replace(SRModel, 'test', test)
    replace(SRModel, 'resume_training', resume_training)
