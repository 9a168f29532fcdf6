"""Image preparation: each paper's recipe as tested functions that run on NumPy arrays and inside ``tf.data``.
"""
