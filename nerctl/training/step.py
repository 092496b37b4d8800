"""One optimisation step: the masked loss, AdamW with its schedule, and the traced step over replicas."""
from __future__ import annotations

from ..config import TrainConfig
from ..modeling.encoding import IGNORE_INDEX
from ..modeling.runtime import import_tensorflow
from .distribute import replica_rows


def masked_loss_sum(labels, logits):
    """Summed cross-entropy over positions with a label (first pieces of owned words)."""
    tf = import_tensorflow()
    mask = tf.not_equal(labels, IGNORE_INDEX)
    safe = tf.where(mask, labels, tf.zeros_like(labels))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=tf.cast(logits, tf.float32))
    return tf.reduce_sum(losses * tf.cast(mask, tf.float32))


def make_optimizer(config: TrainConfig, total_steps: int):
    """AdamW with linear warm-up then linear decay to 0, global-norm clipping at 1.0."""
    from transformers import create_optimizer

    optimizer, _ = create_optimizer(
        init_lr=config.lr, num_train_steps=total_steps, num_warmup_steps=int(total_steps * config.warmup_ratio),
        weight_decay_rate=config.weight_decay, adam_global_clipnorm=1.0,
    )
    return optimizer


def layer_lr_scales(model, variables: list, decay: float) -> list[float] | None:
    """Each variable's share of the learning rate under layer-wise decay: decay ** its depth below the
    output layer (families.layer_depths); None when decay is 1 (every variable at the full rate)."""
    from ..modeling.families import layer_depths

    return None if decay == 1 else [decay**depth for depth in layer_depths(model, variables)]


def make_train_step(model, optimizer, variables: list, strategy=None, loss_sum=masked_loss_sum,
                    lr_scales: list[float] | None = None, distill_sum=None):
    """`step(ids, mask, labels) -> mean loss`: one optimisation step on a global batch.

    `loss_sum(labels, logits)` is the head's summed loss (`masked_loss_sum`, or
    the CRF's from crf.py); it is divided by the batch's label count.
    `lr_scales` (layer_lr_scales) scale each variable's step: AdamW's update
    (weight decay included) is proportional to its learning rate and its
    moments do not depend on it, so scaling the step is a per-variable rate.
    `distill_sum(ids, mask, labels, logits)` (distill.py) adds a teacher's summed
    soft loss over the same positions.

    Traced once for [batch, length] int32 inputs of any shape. Every worker passes
    the same global batch; each replica computes its own contiguous slice of it
    and divides its summed loss by the whole batch's label count, so that the
    all-reduced (summed) gradients are the gradient of the batch's mean loss, as
    on one device.
    """
    tf = import_tensorflow()
    strategy = strategy or tf.distribute.get_strategy()
    spec = tf.TensorSpec([None, None], tf.int32)

    def replica_step(ids, mask, labels):
        context = tf.distribute.get_replica_context()
        start, end = replica_rows(tf.shape(ids)[0], tf.cast(context.replica_id_in_sync_group, tf.int32),
                                  context.num_replicas_in_sync)
        count = tf.maximum(tf.reduce_sum(tf.cast(tf.not_equal(labels, IGNORE_INDEX), tf.float32)), 1.0)
        ids, mask, labels = ids[start:end], mask[start:end], labels[start:end]
        with tf.GradientTape() as tape:
            logits = model(input_ids=ids, attention_mask=mask, training=True).logits
            summed = loss_sum(labels, logits)
            if distill_sum is not None:
                summed += distill_sum(ids, mask, labels, logits)
            loss = summed / count
        grads = tape.gradient(loss, variables)
        if lr_scales is None:
            optimizer.apply_gradients(zip(grads, variables))
            return loss
        scaled = [(v, scale) for v, scale in zip(variables, lr_scales) if scale != 1]
        before = [tf.identity(v) for v, _ in scaled]  # read before the update (ordered by auto control deps)
        optimizer.apply_gradients(zip(grads, variables))
        for (v, scale), old in zip(scaled, before):
            v.assign(old + scale * (v - old))
        return loss

    @tf.function(input_signature=[spec, spec, spec])
    def step(ids, mask, labels):
        losses = strategy.run(replica_step, args=(ids, mask, labels))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return step
