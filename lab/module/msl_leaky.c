// SPDX-License-Identifier: GPL-2.0
/*
 * msl_leaky: the memsleuth lab's leaking module. Each leak pattern comes from its
 * own distinctly named function so the lab tests can check that memsleuth names the
 * right culprit, with exact counts:
 *
 *   msl_slab_leak       kmalloc(slab_size), pointer dropped          every step
 *   msl_page_leak       alloc_pages(page_order), never freed         every page_every-th step,
 *                       page_burst times (1 by default; the OOM boot of lab/oom.ts
 *                       raises it to run the kernel out of memory in seconds)
 *   msl_vmalloc_leak    vmalloc(vmalloc_pages pages), never freed    every vmalloc_every-th step
 *   msl_balanced_churn  kmalloc + alloc_pages kept on a list and freed every
 *                       churn_every-th step and at the end: never a leak
 *
 * Step i (0-based) runs the page leak when i % page_every == 0, so after `steps`
 * steps there are ceil(steps / page_every) page blocks, likewise for vmalloc. The
 * counters are read-only parameters under /sys/module/msl_leaky/parameters/.
 *
 * Kbuild builds this with -fno-inline -fno-optimize-sibling-calls, and every
 * function is noinline with a barrier() after the allocation, so each pattern is a
 * real frame on the allocation stack (no inlining into the worker, no tail call).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/gfp.h>
#include <linux/list.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

static unsigned int steps = 400;
module_param(steps, uint, 0444);
MODULE_PARM_DESC(steps, "how many steps to run");
static unsigned int rate = 10;
module_param(rate, uint, 0444);
MODULE_PARM_DESC(rate, "steps per second");
static unsigned int slab_size = 96;
module_param(slab_size, uint, 0444);
MODULE_PARM_DESC(slab_size, "bytes per leaked kmalloc object");
static unsigned int page_order = 1;
module_param(page_order, uint, 0444);
MODULE_PARM_DESC(page_order, "order of each leaked page block");
static unsigned int page_every = 4;
module_param(page_every, uint, 0444);
static unsigned int page_burst = 1;
module_param(page_burst, uint, 0444);
MODULE_PARM_DESC(page_burst, "page blocks leaked at each page-leak step");
static unsigned int vmalloc_pages = 2;
module_param(vmalloc_pages, uint, 0444);
static unsigned int vmalloc_every = 10;
module_param(vmalloc_every, uint, 0444);
static unsigned int churn_size = 512;
module_param(churn_size, uint, 0444);
static unsigned int churn_every = 3;
module_param(churn_every, uint, 0444);

/* What actually happened (an allocation can fail), for the tests. */
static unsigned int completed;
module_param(completed, uint, 0444);
static unsigned int slab_leaked;
module_param(slab_leaked, uint, 0444);
static unsigned int page_blocks_leaked;
module_param(page_blocks_leaked, uint, 0444);
static unsigned int vmalloc_leaked;
module_param(vmalloc_leaked, uint, 0444);
static unsigned int churn_allocs;
module_param(churn_allocs, uint, 0444);
static unsigned int churn_frees;
module_param(churn_frees, uint, 0444);

struct msl_churn_item {
	struct list_head node;
	struct page *page;
};

static LIST_HEAD(msl_churn_list);
static struct delayed_work msl_work;
/* Each leak passes its pointer through here and then clears it: the only reference dies. */
void *msl_sink;

static noinline void msl_slab_leak(void)
{
	void *p = kmalloc(slab_size, GFP_KERNEL);

	barrier();
	if (!p)
		return;
	memset(p, 0x6d, slab_size);
	WRITE_ONCE(msl_sink, p);
	barrier();
	WRITE_ONCE(msl_sink, NULL);
	slab_leaked++;
}

static noinline void msl_page_leak(void)
{
	struct page *pg = alloc_pages(GFP_KERNEL, page_order);

	barrier();
	if (!pg)
		return;
	WRITE_ONCE(msl_sink, pg);
	barrier();
	WRITE_ONCE(msl_sink, NULL);
	page_blocks_leaked++;
}

static noinline void msl_vmalloc_leak(void)
{
	void *v = vmalloc(vmalloc_pages * PAGE_SIZE);

	barrier();
	if (!v)
		return;
	WRITE_ONCE(msl_sink, v);
	barrier();
	WRITE_ONCE(msl_sink, NULL);
	vmalloc_leaked++;
}

static noinline void msl_churn_release(void)
{
	struct msl_churn_item *it, *tmp;

	list_for_each_entry_safe(it, tmp, &msl_churn_list, node) {
		list_del(&it->node);
		if (it->page)
			__free_pages(it->page, 0);
		kfree(it);
		churn_frees++;
	}
	barrier();
}

static noinline void msl_balanced_churn(unsigned int step)
{
	struct msl_churn_item *it = kmalloc(max_t(size_t, churn_size, sizeof(*it)), GFP_KERNEL);

	barrier();
	if (it) {
		it->page = alloc_pages(GFP_KERNEL, 0);
		barrier();
		list_add(&it->node, &msl_churn_list);
		churn_allocs++;
	}
	if (churn_every && step % churn_every == churn_every - 1)
		msl_churn_release();
	barrier();
}

static noinline void msl_step(unsigned int i)
{
	msl_slab_leak();
	barrier();
	if (page_every && i % page_every == 0) {
		unsigned int j;

		for (j = 0; j < page_burst; j++)
			msl_page_leak();
	}
	barrier();
	if (vmalloc_every && i % vmalloc_every == 0)
		msl_vmalloc_leak();
	barrier();
	msl_balanced_churn(i);
	barrier();
}

static void msl_work_fn(struct work_struct *w)
{
	unsigned int i = completed;

	msl_step(i);
	/* Release the churn before `completed` reaches `steps`: readers wait on it. */
	if (i + 1 >= steps)
		msl_churn_release();
	WRITE_ONCE(completed, i + 1);
	if (i + 1 < steps)
		schedule_delayed_work(&msl_work, max_t(unsigned long, 1, HZ / (rate ? rate : 1)));
}

static int __init msl_init(void)
{
	pr_info("msl_leaky: steps=%u rate=%u slab_size=%u page_order=%u page_every=%u vmalloc_pages=%u vmalloc_every=%u\n",
		steps, rate, slab_size, page_order, page_every, vmalloc_pages, vmalloc_every);
	INIT_DELAYED_WORK(&msl_work, msl_work_fn);
	if (steps)
		schedule_delayed_work(&msl_work, 1);
	return 0;
}

static void __exit msl_exit(void)
{
	cancel_delayed_work_sync(&msl_work);
	msl_churn_release();
}

module_init(msl_init);
module_exit(msl_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("memsleuth lab: leaks slab, pages and vmalloc from named functions");
